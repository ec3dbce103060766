//! Check digits that tell a real identifier from a random digit string: Luhn (payment
//! cards), ISO 7064 mod-97 (IBAN) and the SSA's structural rules for SSNs.

/// Luhn fed one digit at a time, left to right, without knowing the final length.
///
/// Luhn doubles every second digit counted from the *right*, so which digits are doubled
/// depends on the length. Keeping one sum for each parity of the final length makes the
/// check streamable and allocation-free.
#[derive(Clone, Copy, Default)]
pub(crate) struct Luhn {
    len: u32,
    /// The sum if the final length turns out even (odd positions, 1-based, doubled).
    if_even: u32,
    /// The sum if the final length turns out odd (even positions doubled).
    if_odd: u32,
}

/// Shows the length only: the partial sums are a function of the digits.
impl std::fmt::Debug for Luhn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Luhn")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl Luhn {
    pub(crate) fn push(&mut self, digit: u8) {
        let d = u32::from(digit % 10);
        let doubled = if d * 2 > 9 { d * 2 - 9 } else { d * 2 };
        self.len = self.len.saturating_add(1);
        if !self.len.is_multiple_of(2) {
            self.if_even = (self.if_even + doubled) % 10;
            self.if_odd = (self.if_odd + d) % 10;
        } else {
            self.if_even = (self.if_even + d) % 10;
            self.if_odd = (self.if_odd + doubled) % 10;
        }
    }

    pub(crate) fn is_valid(&self) -> bool {
        let sum = if self.len.is_multiple_of(2) {
            self.if_even
        } else {
            self.if_odd
        };
        self.len > 1 && sum == 0
    }
}

/// True if `compact` (letters and digits only, any case) is a well-formed IBAN whose
/// mod-97 check holds.
pub(crate) fn iban_valid(compact: &[u8]) -> bool {
    if !(15..=34).contains(&compact.len())
        || !compact[..2].iter().all(u8::is_ascii_alphabetic)
        || !compact[2..4].iter().all(u8::is_ascii_digit)
        || !compact.iter().all(u8::is_ascii_alphanumeric)
    {
        return false;
    }
    // The check runs over the string with its first four characters moved to the end and
    // letters expanded to 10..=35; folding the remainder avoids a big integer.
    let rearranged = compact[4..].iter().chain(&compact[..4]);
    let rem = rearranged.fold(0u32, |rem, &c| {
        if c.is_ascii_digit() {
            (rem * 10 + u32::from(c - b'0')) % 97
        } else {
            (rem * 100 + u32::from(c.to_ascii_uppercase() - b'A') + 10) % 97
        }
    });
    rem == 1
}

/// True if nine digits could be an issued SSN: area not 000, 666 or 900–999, group not 00,
/// serial not 0000. Rejecting the impossible ones keeps e.g. `900-12-3456` from being
/// labelled an SSN; such a run is still redacted by length, just under another kind.
pub(crate) fn ssn_plausible(d: &[u8; 9]) -> bool {
    let area = u32::from(d[0]) * 100 + u32::from(d[1]) * 10 + u32::from(d[2]);
    let group = u32::from(d[3]) * 10 + u32::from(d[4]);
    let serial = d[5..].iter().fold(0u32, |a, &x| a * 10 + u32::from(x));
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn luhn(s: &str) -> bool {
        let mut l = Luhn::default();
        s.bytes().for_each(|b| l.push(b - b'0'));
        l.is_valid()
    }

    #[test]
    fn luhn_accepts_known_valid_numbers_of_both_parities() {
        assert!(luhn("4111111111111111"));
        assert!(luhn("79927398713"));
        assert!(luhn("378282246310005"));
        assert!(!luhn("4111111111111112"));
        assert!(!luhn("79927398710"));
        assert!(!luhn("0"));
    }

    #[test]
    fn iban_checks_mod_97() {
        assert!(iban_valid(b"GB82WEST12345698765432"));
        assert!(iban_valid(b"gb82west12345698765432"));
        assert!(iban_valid(b"DE89370400440532013000"));
        assert!(!iban_valid(b"GB82WEST12345698765433"));
        assert!(!iban_valid(b"GB82WEST"));
    }

    #[test]
    fn ssn_rules() {
        assert!(ssn_plausible(&[0, 7, 8, 0, 5, 1, 1, 2, 0]));
        assert!(!ssn_plausible(&[6, 6, 6, 1, 2, 1, 2, 3, 4]));
        assert!(!ssn_plausible(&[9, 0, 0, 1, 2, 1, 2, 3, 4]));
        assert!(!ssn_plausible(&[1, 2, 3, 0, 0, 1, 2, 3, 4]));
        assert!(!ssn_plausible(&[1, 2, 3, 4, 5, 0, 0, 0, 0]));
    }
}
