//! The byte-level primitives of the snapshot format: LEB128 varints (zigzag for signed
//! values), length-prefixed UTF-8 strings, and a reader that never reads past its input,
//! never panics and never allocates more than its input could describe.

use super::SnapshotError;

/// Appends values to a byte buffer.
#[derive(Debug, Default)]
pub(crate) struct Out {
    pub buf: Vec<u8>,
}

impl Out {
    pub fn u(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    pub fn i(&mut self, v: i64) {
        self.u(((v << 1) ^ (v >> 63)) as u64);
    }

    pub fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    pub fn str(&mut self, s: &str) {
        self.u(s.len() as u64);
        self.bytes(s.as_bytes());
    }
}

/// Reads values from a byte slice; every failure names what was being read.
#[derive(Debug)]
pub(crate) struct In<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> In<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Where the reader stands, for error messages.
    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn bad(&self, what: &'static str, why: &'static str) -> SnapshotError {
        SnapshotError::Malformed {
            field: what,
            offset: self.pos,
            why,
        }
    }

    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], SnapshotError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| self.bad(what, "truncated"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    pub fn u(&mut self, what: &'static str) -> Result<u64, SnapshotError> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = *self
                .buf
                .get(self.pos)
                .ok_or_else(|| self.bad(what, "truncated"))?;
            self.pos += 1;
            let bits = u64::from(b & 0x7F);
            if shift == 63 && bits > 1 {
                return Err(self.bad(what, "varint overflows 64 bits"));
            }
            v |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.bad(what, "varint longer than 10 bytes"))
    }

    pub fn i(&mut self, what: &'static str) -> Result<i64, SnapshotError> {
        let z = self.u(what)?;
        Ok(((z >> 1) as i64) ^ -((z & 1) as i64))
    }

    /// A value of at most `max`.
    pub fn upto(&mut self, max: u64, what: &'static str) -> Result<u64, SnapshotError> {
        let v = self.u(what)?;
        if v > max {
            return Err(self.bad(what, "value out of range"));
        }
        Ok(v)
    }

    pub fn u32(&mut self, what: &'static str) -> Result<u32, SnapshotError> {
        Ok(self.upto(u64::from(u32::MAX), what)? as u32)
    }

    /// A count of items each taking at least `min_bytes` of input, and at most `max`: a
    /// hostile count cannot make the decoder allocate beyond its input.
    pub fn count(
        &mut self,
        max: usize,
        min_bytes: usize,
        what: &'static str,
    ) -> Result<usize, SnapshotError> {
        let n = self.u(what)?;
        let fits =
            n <= max as u64 && (n as u128) * (min_bytes.max(1) as u128) <= self.remaining() as u128;
        if !fits {
            return Err(self.bad(what, "count exceeds its bound or the input"));
        }
        Ok(n as usize)
    }

    pub fn flag(&mut self, what: &'static str) -> Result<bool, SnapshotError> {
        match self.take(1, what)?.first() {
            Some(0) => Ok(false),
            Some(1) => Ok(true),
            _ => Err(self.bad(what, "flag is neither 0 nor 1")),
        }
    }

    /// A UTF-8 string of at most `max` bytes.
    pub fn str(&mut self, max: usize, what: &'static str) -> Result<&'a str, SnapshotError> {
        let n = self.upto(max as u64, what)? as usize;
        let b = self.take(n, what)?;
        std::str::from_utf8(b).map_err(|_| self.bad(what, "not UTF-8"))
    }

    pub fn fixed64(&mut self, what: &'static str) -> Result<u64, SnapshotError> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    pub fn end(&self) -> Result<(), SnapshotError> {
        if self.remaining() != 0 {
            return Err(self.bad("end", "trailing bytes"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_the_edges_and_reject_overlong_ones() {
        let mut o = Out::default();
        let us = [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX];
        let is = [0, -1, 1, i64::MIN, i64::MAX, -300];
        for v in us {
            o.u(v);
        }
        for v in is {
            o.i(v);
        }
        let mut r = In::new(&o.buf);
        for v in us {
            assert_eq!(r.u("u").ok(), Some(v));
        }
        for v in is {
            assert_eq!(r.i("i").ok(), Some(v));
        }
        assert!(r.end().is_ok());
        let overlong = [0xFFu8; 11];
        assert!(In::new(&overlong).u("x").is_err());
        let overflow = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02];
        assert!(In::new(&overflow).u("x").is_err());
    }

    #[test]
    fn a_count_larger_than_the_input_is_refused_before_allocating() {
        let mut o = Out::default();
        o.u(1 << 40);
        assert!(In::new(&o.buf).count(usize::MAX, 1, "n").is_err());
    }
}
