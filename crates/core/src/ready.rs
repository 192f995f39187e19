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

    pub(crate) const fn contains(self, other: Ready) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
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

    /// The I/O readiness an interest set asks for.
    pub(crate) const fn from_interest(interest: Interest) -> Ready {
        // Interest's READ/WRITE bits are laid out like READABLE/WRITABLE.
        Ready(interest.bits() & 0b11)
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
