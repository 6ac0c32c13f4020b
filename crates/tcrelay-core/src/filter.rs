//! The event filter: which webhook `eventName`s are relayed.
//!
//! Users enable events in Tradecloud's portal, but a second filter here lets them drop echoes of
//! their own changes (for a buyer: every `…ByBuyer` event) without touching the portal, and lets
//! one deployment serve several integrations with different needs. A filtered event is answered
//! 200, so Tradecloud considers it delivered.

/// A pattern over event names: literal characters and `*`, which matches any run of characters
/// (also none). Matching is case-sensitive because Tradecloud's event names are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern(String);

impl Pattern {
    /// A pattern from its text, for example `Order*ByBuyer`.
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `name` matches the whole pattern.
    pub fn matches(&self, name: &str) -> bool {
        wildcard_match(self.0.as_bytes(), name.as_bytes())
    }
}

/// Iterative glob matching with `*` only, linear in practice: on a mismatch the last `*` absorbs
/// one more character, which is all the backtracking a single wildcard kind needs.
fn wildcard_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Allow and deny lists of [`Pattern`]s.
///
/// An event is relayed when it matches the allow list (an empty allow list allows everything)
/// and does not match the deny list: deny wins, so `allow=Order*` with `deny=*ByBuyer` relays
/// the supplier's order events only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    allow: Vec<Pattern>,
    deny: Vec<Pattern>,
}

impl EventFilter {
    /// A filter from the two lists.
    pub fn new(allow: Vec<Pattern>, deny: Vec<Pattern>) -> Self {
        Self { allow, deny }
    }

    /// A filter that relays every event.
    pub fn allow_all() -> Self {
        Self::default()
    }

    /// Parses a list as written in the environment: patterns separated by commas, newlines or
    /// whitespace (event names contain none of them); empty entries are ignored.
    pub fn parse_list(text: &str) -> Vec<Pattern> {
        text.split(|c: char| c == ',' || c.is_whitespace())
            .filter(|p| !p.is_empty())
            .map(Pattern::new)
            .collect()
    }

    /// The allow list.
    pub fn allow(&self) -> &[Pattern] {
        &self.allow
    }

    /// The deny list.
    pub fn deny(&self) -> &[Pattern] {
        &self.deny
    }

    /// Whether an event with this name is relayed.
    pub fn admits(&self, event_name: &str) -> bool {
        let allowed = self.allow.is_empty() || self.allow.iter().any(|p| p.matches(event_name));
        allowed && !self.deny.iter().any(|p| p.matches(event_name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn wildcards_match_any_run_including_empty() {
        let p = Pattern::new("Order*ByBuyer");
        assert!(p.matches("OrderIssuedByBuyer"));
        assert!(p.matches("OrderByBuyer"));
        assert!(!p.matches("OrderIssuedBySupplier"));
        assert!(!p.matches("XOrderIssuedByBuyer"));
        assert!(Pattern::new("*").matches(""));
        assert!(Pattern::new("*Resent*").matches("OrderResentByBuyer"));
        assert!(Pattern::new("a*b*c").matches("aXXbYYbZc"));
        assert!(!Pattern::new("a*b*c").matches("aXXbYYbZ"));
        assert!(!Pattern::new("Shipment").matches("ShipmentIssuedBySupplier"));
        assert!(!Pattern::new("orderissuedbybuyer").matches("OrderIssuedByBuyer"));
    }

    #[test]
    fn empty_allow_list_allows_everything_and_deny_wins() {
        let all = EventFilter::allow_all();
        assert!(all.admits("AnythingNew"));

        let f = EventFilter::new(
            EventFilter::parse_list("Order*, Shipment*\n"),
            EventFilter::parse_list("*ByBuyer"),
        );
        assert!(f.admits("OrderLinesAcceptedBySupplier"));
        assert!(f.admits("ShipmentIssuedBySupplier"));
        assert!(!f.admits("OrderIssuedByBuyer"));
        assert!(!f.admits("CancelledOrderLinesRevertedByBuyer"));
        assert!(f.admits("OrderDocumentsAttachedBySupplier"));
        assert!(!f.admits("OrderDocumentsAttachedByBuyer"));
        assert!(!f.admits("CancelledOrderLinesRevertedBySupplier")); // not in the allow list
    }

    #[test]
    fn allow_list_restricts() {
        let f = EventFilter::new(EventFilter::parse_list("ShipmentIssuedBySupplier"), vec![]);
        assert!(f.admits("ShipmentIssuedBySupplier"));
        assert!(!f.admits("ShipmentApprovedByBuyer"));
    }

    #[test]
    fn parse_list_splits_on_commas_and_whitespace() {
        let list = EventFilter::parse_list(" A,B\nC  D,,");
        let names: Vec<&str> = list.iter().map(Pattern::as_str).collect();
        assert_eq!(names, ["A", "B", "C", "D"]);
    }

    /// A naive recursive matcher as the reference for the iterative one.
    fn reference(p: &[u8], t: &[u8]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some(b'*'), _) => reference(&p[1..], t) || (!t.is_empty() && reference(p, &t[1..])),
            (Some(a), Some(b)) if a == b => reference(&p[1..], &t[1..]),
            _ => false,
        }
    }

    proptest! {
        #[test]
        fn matches_like_the_reference(p in "[ab*]{0,8}", t in "[ab]{0,10}") {
            prop_assert_eq!(Pattern::new(p.clone()).matches(&t), reference(p.as_bytes(), t.as_bytes()));
        }
    }
}
