//! Readiness bits: what the OS said about a socket, as the table keeps it.

use crate::Interest;

/// A small set of readiness flags.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Ready(u8);

impl Ready {
    pub(crate) const EMPTY: Ready = Ready(0);
    pub(crate) const READABLE: Ready = Ready(0b0001);
    pub(crate) const WRITABLE: Ready = Ready(0b0010);
    pub(crate) const ERROR: Ready = Ready(0b0100);
    pub(crate) const READ_CLOSED: Ready = Ready(0b1000);
    pub(crate) const WRITE_CLOSED: Ready = Ready(0b1_0000);

    /// Whether every flag of `other` is set (true for `EMPTY`).
    pub(crate) const fn contains(self, other: Ready) -> bool {
        self.0 & other.0 == other.0
    }

    /// The readiness an OS report leaves in the table: readable or
    /// read-closed makes READABLE, read-closed also READ_CLOSED, writable or
    /// write-closed makes WRITABLE; ERROR and WRITE_CLOSED are not kept.
    /// Bit operations only: it runs once per OS report.
    pub(crate) const fn to_io_readiness(self) -> Ready {
        // READ_CLOSED (bit 3) >> 3 is READABLE; WRITE_CLOSED (bit 4) >> 3
        // is WRITABLE.
        let closed = (self.0 >> 3) & (Ready::READABLE.0 | Ready::WRITABLE.0);
        Ready((self.0 & (Ready::READABLE.0 | Ready::WRITABLE.0 | Ready::READ_CLOSED.0)) | closed)
    }

    pub(crate) const fn intersects(self, other: Ready) -> bool {
        self.0 & other.0 != 0
    }

    pub(crate) const fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub(crate) fn insert(&mut self, other: Ready) {
        self.0 |= other.0;
    }

    pub(crate) fn remove(&mut self, other: Ready) {
        self.0 &= !other.0;
    }

    /// The flags as a byte, for records.
    #[cfg(feature = "faults")]
    pub(crate) const fn bits(self) -> u8 {
        self.0
    }

    /// Flags from a byte (unknown bits dropped), for records and plans.
    #[cfg(feature = "faults")]
    pub(crate) const fn from_bits(bits: u8) -> Ready {
        Ready(bits & 0b1_1111)
    }

    /// The I/O readiness an interest set asks for.
    pub(crate) const fn from_interest(interest: Interest) -> Ready {
        // Interest's READ/WRITE bits are laid out like READABLE/WRITABLE.
        Ready(interest.bits() & 0b11)
    }
}

impl std::ops::BitAnd for Ready {
    type Output = Ready;
    fn bitand(self, other: Ready) -> Ready {
        Ready(self.0 & other.0)
    }
}

impl std::ops::BitOr for Ready {
    type Output = Ready;
    fn bitor(self, other: Ready) -> Ready {
        Ready(self.0 | other.0)
    }
}

impl std::fmt::Debug for Ready {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = [
            (Ready::READABLE, "R"),
            (Ready::WRITABLE, "W"),
            (Ready::ERROR, "E"),
            (Ready::READ_CLOSED, "RC"),
            (Ready::WRITE_CLOSED, "WC"),
        ];
        let mut first = true;
        for (flag, name) in names {
            if self.contains(flag) {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        if first {
            f.write_str("-")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Ready;

    #[test]
    fn os_reports_map_to_the_bits_the_table_keeps() {
        let r = Ready::READABLE;
        let w = Ready::WRITABLE;
        let rc = Ready::READ_CLOSED;
        let cases = [
            (Ready::EMPTY, Ready::EMPTY),
            (r, r),
            (w, w),
            (r | w, r | w),
            (rc, r | rc),
            (Ready::WRITE_CLOSED, w),
            (Ready::ERROR, Ready::EMPTY),
            (Ready::ERROR | Ready::WRITE_CLOSED | rc, r | w | rc),
        ];
        for (os, kept) in cases {
            assert_eq!(os.to_io_readiness(), kept, "{os:?}");
        }
        assert!(r.contains(Ready::EMPTY));
        assert!(!r.contains(r | w));
    }
}
