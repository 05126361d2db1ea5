use std::io::Read;
use std::io::Result as IoResult;

/// A `Reader` that reads exactly the number of bytes from a sub-reader.
///
/// If the limit is reached, it returns EOF.
///
/// Patched: tiny_http 0.12 read and threw away the rest of the body when
/// this reader was dropped, allocating all of it at once (`vec![0;
/// remaining]`): a request claiming a `Content-Length` of 10^12 aborted the
/// process, and 2^64-1 panicked with "capacity overflow". Nothing is read
/// on drop any more; the body's reader marks the connection for closing
/// instead (see `BodyDeadline` in request.rs).
pub struct EqualReader<R>
where
    R: Read,
{
    reader: R,
    size: usize,
}

impl<R> EqualReader<R>
where
    R: Read,
{
    pub fn new(reader: R, size: usize) -> EqualReader<R> {
        EqualReader { reader, size }
    }
}

impl<R> Read for EqualReader<R>
where
    R: Read,
{
    fn read(&mut self, buf: &mut [u8]) -> IoResult<usize> {
        if self.size == 0 {
            return Ok(0);
        }

        let buf = if buf.len() < self.size {
            buf
        } else {
            &mut buf[..self.size]
        };

        match self.reader.read(buf) {
            Ok(len) => {
                self.size -= len;
                Ok(len)
            }
            err @ Err(_) => err,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::EqualReader;
    use std::io::Read;

    #[test]
    fn test_limit() {
        use std::io::Cursor;

        let mut org_reader = Cursor::new("hello world".to_string().into_bytes());

        {
            let mut equal_reader = EqualReader::new(org_reader.by_ref(), 5);

            let mut string = String::new();
            equal_reader.read_to_string(&mut string).unwrap();
            assert_eq!(string, "hello");
        }

        let mut string = String::new();
        org_reader.read_to_string(&mut string).unwrap();
        assert_eq!(string, " world");
    }

    #[test]
    fn dropping_a_huge_unread_body_allocates_nothing() {
        use std::io::Cursor;

        let mut org_reader = Cursor::new(b"x".to_vec());
        {
            let mut equal_reader = EqualReader::new(org_reader.by_ref(), usize::MAX);
            let mut byte = [0];
            equal_reader.read_exact(&mut byte).unwrap();
        }
        assert_eq!(org_reader.position(), 1);
    }
}
