use actix_web::http::StatusCode;

/// Fails a share of hello requests on purpose, so that error metrics and
/// alerts have something to show.
///
/// The original drew `randint(0, 100) <= percent`, which fails 1 request in
/// 101 even at `percent = 0` had it been consulted, and 51 in 101 at 50; this
/// draws from 1..=100 so that the share is exactly the setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chaos {
    percent: u8,
}

impl Chaos {
    /// `percent` of requests fail; `None` unless it is within 0..=100.
    pub fn new(percent: u8) -> Option<Self> {
        (percent <= 100).then_some(Self { percent })
    }

    /// Parses a setting such as `10`, for `CHAOS_TARGET_PERCENT`.
    ///
    /// # Errors
    ///
    /// A message saying what is accepted, unless `text` is an integer in 0..=100.
    pub fn parse(text: &str) -> Result<Self, String> {
        text.trim()
            .parse::<u8>()
            .ok()
            .and_then(Self::new)
            .ok_or_else(|| "expected an integer from 0 to 100 (a percentage)".to_owned())
    }

    /// The status this request fails with, if it does: a random status in
    /// 400..=500, as the original.
    pub fn draw(&self) -> Option<StatusCode> {
        if self.percent == 0 || fastrand::u8(1..=100) > self.percent {
            return None;
        }
        StatusCode::from_u16(fastrand::u16(400..=500)).ok()
    }
}

impl std::fmt::Display for Chaos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}%", self.percent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_share_and_the_statuses_follow_the_setting() {
        assert_eq!(Chaos::new(101), None);
        assert_eq!(Chaos::parse(" 7"), Ok(Chaos { percent: 7 }));
        assert!(Chaos::parse("abc").is_err() && Chaos::parse("-1").is_err());
        assert!(Chaos::parse("101").is_err());
        let never = Chaos::new(0).expect("valid");
        assert!((0..10_000).all(|_| never.draw().is_none()));
        let always = Chaos::new(100).expect("valid");
        assert!((0..10_000).all(|_| always
            .draw()
            .is_some_and(|s| (400..=500).contains(&s.as_u16()))));
        let half = Chaos::new(50).expect("valid");
        let failures = (0..10_000).filter(|_| half.draw().is_some()).count();
        // Binomial(10000, 0.5): standard deviation 50; allow 8 of them.
        assert!((4_600..=5_400).contains(&failures), "{failures}");
    }
}
