//! The writing half of a WebSocket: encodes server frames into one buffer
//! and sends the buffer with as few `write` calls as possible.
//!
//! Why not tungstenite's own writer: it either writes every frame with its
//! own syscall (write buffer 0) or keeps a buffer that never shrinks. In a
//! connect storm each client gets thousands of presence frames and one large
//! `online_users` list: one syscall per frame made the storm CPU-bound, and
//! a buffer that keeps the capacity of the largest frame ever sent made
//! every connection hold hundreds of KiB. This writer sends a batch in one
//! go and gives memory back once a large batch is out. Frames are encoded by
//! tungstenite ([`Frame::format`]), so the bytes on the wire are the same.

use std::io::{self, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;

use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::Frame;
use tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tungstenite::{Bytes, Utf8Bytes};

use super::outbound::CloseReason;

/// Bytes encoded before they are written even though the batch goes on:
/// bounds the buffer a batch of presence frames can grow.
const WRITE_CHUNK_BYTES: usize = 64 * 1024;
/// Buffer capacity kept between batches. A larger one (after a large
/// frame) is freed, so idle connections stay small.
const KEEP_BUFFER_BYTES: usize = 4 * 1024;

/// A connection's writing side. It shares the socket with the reader (one
/// file descriptor per connection); reading and writing one socket from two
/// threads at once is safe, and only this writer ever writes after the
/// handshake.
pub struct FrameWriter {
    socket: Arc<TcpStream>,
    buffer: Vec<u8>,
}

impl FrameWriter {
    pub fn new(socket: Arc<TcpStream>) -> FrameWriter {
        FrameWriter {
            socket,
            buffer: Vec::new(),
        }
    }

    pub fn text(&mut self, text: Utf8Bytes) -> io::Result<()> {
        self.frame(Frame::message(
            Bytes::from(text),
            OpCode::Data(Data::Text),
            true,
        ))
    }

    pub fn ping(&mut self) -> io::Result<()> {
        self.frame(Frame::ping(Bytes::new()))
    }

    pub fn pong(&mut self, payload: Bytes) -> io::Result<()> {
        self.frame(Frame::pong(payload))
    }

    /// Queues a close frame and sends everything.
    pub fn close(&mut self, reason: CloseReason) -> io::Result<()> {
        let close = CloseFrame {
            code: CloseCode::from(reason.code()),
            reason: reason.text().into(),
        };
        self.frame(Frame::close(Some(close)))?;
        self.flush()
    }

    /// Sends what is buffered.
    pub fn flush(&mut self) -> io::Result<()> {
        (&*self.socket).write_all(&self.buffer)?;
        self.buffer.clear();
        if self.buffer.capacity() > KEEP_BUFFER_BYTES {
            self.buffer = Vec::new();
        }
        Ok(())
    }

    /// Ends the connection both ways; wakes the reader if it is waiting.
    pub fn shutdown(&self) {
        let _ = self.socket.shutdown(Shutdown::Both);
    }

    fn frame(&mut self, frame: Frame) -> io::Result<()> {
        frame.format(&mut self.buffer).map_err(io::Error::other)?;
        if self.buffer.len() >= WRITE_CHUNK_BYTES {
            (&*self.socket).write_all(&self.buffer)?;
            self.buffer.clear();
        }
        Ok(())
    }
}
