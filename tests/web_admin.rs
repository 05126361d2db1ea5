//! Running a group in the web client, in two real headless Chromium
//! sessions: the admin makes an invitation on the admin page, the invitee
//! opens its link and registers with the code already filled in, and when
//! the admin disables the account the invitee's page says so at once.

mod common;

use common::TestServer;
use common::browser::{Browser, log_in, q, save_screenshot};

#[test]
fn an_admin_invites_the_invitee_registers_through_the_link_and_is_disabled() {
    // As an operator runs it: open until the first account, invite after.
    let server = TestServer::start_with(|config| config.registration = None);
    let base = server.base();
    server.user("alice"); // the first account: the admin

    let mut admin = Browser::launch(1280, 900);
    log_in(&mut admin, &base, "alice");
    admin.click("#open-admin");
    admin.wait_for(&format!("{}.open", q("#admin")), "the admin page");
    admin.wait_for(
        &format!(
            "{}.textContent.includes('registration: invite')",
            q("#admin-stats")
        ),
        "the numbers",
    );
    admin.click("#invite-form button[type=submit]");
    let link = admin.wait_for(
        &format!("{}?.value", q("#invites li[data-code] .invite-link")),
        "an invitation link",
    );
    let link = link.as_str().expect("link").to_owned();
    assert!(link.starts_with(&format!("{base}/?invite=")), "{link}");
    save_screenshot(&mut admin, "11-admin");

    // The invitee opens the link: the registration form, code filled in.
    let mut invitee = Browser::launch(1280, 800);
    invitee.goto(&link);
    invitee.wait_for("document.body.dataset.ready === 'true'", "page ready");
    invitee.wait_for(
        &format!("!{}.hidden", q("#register-form")),
        "the registration form",
    );
    let code = link.rsplit('=').next().expect("code");
    let filled = invitee.eval(&format!("{}.value", q("#register-form [name=invite]")));
    assert_eq!(filled, code);
    invitee.type_into("#register-form [name=nickname]", "bob");
    invitee.type_into("#register-form [name=email]", "bob@example.org");
    invitee.type_into("#register-form [name=password]", "password123");
    invitee.click("#register-form button[type=submit]");
    invitee.wait_for(
        "document.body.dataset.sync === 'done'",
        "registered and logged in",
    );
    assert_eq!(
        invitee.eval("location.search"),
        "",
        "the used link is gone from the address"
    );

    // The admin sees the invitation used, and bob in the accounts.
    admin.click("#admin-close");
    admin.click("#open-admin");
    admin.wait_for(
        &format!(
            "{}?.textContent.includes('bob')",
            q("#admin-users tr[data-user-id='2']")
        ),
        "bob in the accounts",
    );
    admin.wait_for(
        &format!("{}.textContent.includes('1/1 used')", q("#invites")),
        "the invitation used",
    );

    // Disabled: the invitee's page goes back to the login with the reason.
    let disable = "#admin-users tr[data-user-id='2'] button[data-action=disable]";
    admin.click(disable);
    invitee.wait_for(
        &format!(
            "!{}.hidden && {}.textContent.includes('disabled')",
            q("#auth-view"),
            q("#auth-error")
        ),
        "the invitee's page says the account is disabled",
    );
    admin.wait_for(
        &format!(
            "{}?.textContent === 'Enable'",
            q("#admin-users tr[data-user-id='2'] button[data-action]")
        ),
        "bob shown disabled",
    );
    // And logging in again is refused with the reason.
    invitee.eval(&format!("{}.textContent = ''", q("#auth-error")));
    invitee.type_into("#login-form [name=identifier]", "bob");
    invitee.type_into("#login-form [name=password]", "password123");
    invitee.click("#login-form button[type=submit]");
    invitee.wait_for(
        &format!("{}.textContent.includes('disabled')", q("#auth-error")),
        "the login refused",
    );
}

#[test]
fn a_report_from_the_page_reaches_the_admin_page_and_a_name_and_password_change_in_the_account_dialog()
 {
    let server = TestServer::start();
    let base = server.base();
    server.user("alice"); // the admin
    let (_, bob_id) = server.user("bob");
    let (mallory, mallory_id) = server.user("mallory");
    let bad = mallory.send(bob_id, "something abusive")["id"]
        .as_i64()
        .expect("id");

    let mut bob = Browser::launch(1280, 800);
    log_in(&mut bob, &base, "bob");
    common::browser::open_with(&mut bob, mallory_id);
    let message = format!("#messages [data-message-id=\"{bad}\"]");
    bob.wait_for(&q(&message), "the message shown");
    bob.click(&format!("{message} .bubble"));
    bob.click(&format!(
        "{message} .action[title=\"Report to the admins\"]"
    ));
    bob.wait_for(
        &format!("{}.textContent.includes('Reported')", q("#notice")),
        "the report confirmed",
    );

    let mut admin = Browser::launch(1280, 900);
    log_in(&mut admin, &base, "alice");
    admin.click("#open-admin");
    let report = "#reports li.report";
    admin.wait_for(
        &format!("{}?.textContent.includes('something abusive')", q(report)),
        "the report with its message",
    );
    admin.click(&format!("{report} button[data-resolution=message_deleted]"));
    admin.wait_for(
        &format!("!{}.hidden", q("#no-reports")),
        "no open reports left",
    );
    bob.wait_for(
        &format!("{}?.textContent.includes('deleted')", q(&message)),
        "the message deleted on bob's page",
    );
    admin.click("#admin-close");

    // The account dialog: a display name everyone sees, an impostor's
    // refused, and a password change that keeps this page logged in.
    bob.click("#open-account");
    bob.wait_for(&format!("{}.open", q("#account")), "the account dialog");
    bob.wait_for(
        &format!("{}.textContent.includes('This browser')", q("#sessions")),
        "this session listed",
    );
    bob.type_into("#name-form [name=display_name]", "\u{430}lice");
    bob.click("#name-form button[type=submit]");
    bob.wait_for(
        &format!(
            "{}.textContent.includes('looks like')",
            q("#account-notice")
        ),
        "the impostor refused",
    );
    bob.type_into("#name-form [name=display_name]", "Bob the Builder 🔨");
    bob.click("#name-form button[type=submit]");
    bob.wait_for(
        &format!("{}.textContent === 'Saved.'", q("#account-notice")),
        "saved",
    );
    bob.type_into("#password-form [name=current]", "password123");
    bob.type_into("#password-form [name=new]", "a much better one");
    bob.click("#password-form button[type=submit]");
    bob.wait_for(
        &format!(
            "{}.textContent.includes('Password changed')",
            q("#account-notice")
        ),
        "the password changed",
    );
    // A picture, chosen from a file: it replaces the initial at once.
    bob.eval(
        r##"(async () => {
            const canvas = document.createElement("canvas");
            canvas.width = 400; canvas.height = 400;
            const g = canvas.getContext("2d");
            g.fillStyle = "#3a7"; g.fillRect(0, 0, 400, 400);
            const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
            const data = new DataTransfer();
            data.items.add(new File([blob], "me.png", { type: "image/png" }));
            const input = document.querySelector("#avatar-input");
            input.files = data.files;
            input.dispatchEvent(new Event("change"));
            return true;
        })()"##,
    );
    bob.wait_for(&q("#me-avatar img"), "the picture in place of the initial");
    // Loading is no change of the page a wait_for sees: awaited here.
    let width = bob.eval(&format!(
        "{0}.decode().then(() => {0}.naturalWidth)",
        q("#me-avatar img")
    ));
    assert_eq!(width, 320, "the thumbnail is shown");
    let mut rest = server.client();
    assert_eq!(rest.login("bob", "a much better one").status, 200);
    let listed = rest.get("/api/users").body["users"].clone();
    let shown = listed
        .as_array()
        .expect("users")
        .iter()
        .find(|u| u["id"] == bob_id)
        .map(|u| u["display_name"].clone());
    assert_eq!(shown, Some(serde_json::json!("Bob the Builder 🔨")));
    save_screenshot(&mut bob, "12-account");
}

#[test]
fn a_reset_link_opens_a_new_password_form_that_works_once() {
    let server = TestServer::start();
    let base = server.base();
    let (admin, _) = server.user("alice");
    let (_, bob_id) = server.user("bob");
    let link = admin.post(
        &format!("/api/admin/users/{bob_id}/reset-link"),
        &serde_json::json!({}),
    );
    let url = link.body["url"].as_str().expect("url").to_owned();

    let mut page = Browser::launch(1280, 800);
    page.goto(&format!("{base}{url}"));
    page.wait_for("document.body.dataset.ready === 'true'", "page ready");
    page.wait_for(
        &format!("!{}.hidden", q("#reset-form")),
        "the new-password form",
    );
    page.type_into("#reset-form [name=password]", "chosen by bob");
    page.click("#reset-form button[type=submit]");
    page.wait_for(
        &format!(
            "{}.textContent.includes('password is set') && !{}.hidden",
            q("#auth-error"),
            q("#login-form")
        ),
        "the login form, told the password is set",
    );
    assert_eq!(
        page.eval(&format!("{}.value", q("#login-form [name=identifier]"))),
        "bob"
    );
    assert_eq!(
        page.eval("location.search"),
        "",
        "the used link is gone from the address"
    );
    page.type_into("#login-form [name=password]", "chosen by bob");
    page.click("#login-form button[type=submit]");
    page.wait_for("document.body.dataset.sync === 'done'", "logged in with it");

    // The same link again: refused, with the reason.
    let mut again = Browser::launch(1280, 800);
    again.goto(&format!("{base}{url}"));
    again.wait_for("document.body.dataset.ready === 'true'", "page ready");
    again.type_into("#reset-form [name=password]", "someone else's");
    again.click("#reset-form button[type=submit]");
    again.wait_for(
        &format!(
            "{}.textContent.includes('unknown, used or expired')",
            q("#auth-error")
        ),
        "the used link refused",
    );
}
