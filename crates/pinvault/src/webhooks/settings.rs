//! A server's webhook delivery settings, and the retry schedule.

use std::time::Duration;

use rand::Rng;

use crate::domain::time::Timestamp;

/// Delivery settings of a server.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Deliver to loopback, private and link-local addresses too.
    pub allow_private_targets: bool,
    pub schedule: RetrySchedule,
    /// Time allowed for one attempt: connect, TLS, request and response head.
    pub attempt_timeout: Duration,
    /// How often the worker looks for due deliveries.
    pub poll_interval: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            allow_private_targets: false,
            schedule: RetrySchedule::default(),
            attempt_timeout: Duration::from_secs(10),
            poll_interval: Duration::from_secs(1),
        }
    }
}

/// The delays before each retry, after the first attempt. Each gets ±10 %
/// jitter, so receivers that failed together are not all hit again at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule(pub Vec<Duration>);

/// 5 s, 30 s, 2 min, 10 min, 1 h, 2 h, 4 h, then every 6 h: 11 attempts over
/// about 25 hours.
pub const DEFAULT_SCHEDULE: &str = "5s,30s,2m,10m,1h,2h,4h,6h,6h,6h";

impl Default for RetrySchedule {
    fn default() -> Self {
        // The constant parses; a failure would be a bug caught by the unit test.
        RetrySchedule::parse(DEFAULT_SCHEDULE).unwrap_or(RetrySchedule(vec![]))
    }
}

impl RetrySchedule {
    /// `5s,30s,2m,1h`: durations with a unit (`s`, `m`, `h`), comma-separated.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut out = Vec::new();
        for item in text.split(',').map(str::trim) {
            let (n, unit) = item.split_at(item.len().saturating_sub(1));
            let n: u64 = n
                .parse()
                .map_err(|_| format!("bad retry delay `{item}` (expected e.g. 5s, 2m, 1h)"))?;
            let secs = match unit {
                "s" => n,
                "m" => n * 60,
                "h" => n * 3600,
                _ => return Err(format!("bad retry delay `{item}` (unit s, m or h)")),
            };
            if secs == 0 || secs > 7 * 86_400 {
                return Err(format!("retry delay `{item}` must be from 1s to 168h"));
            }
            out.push(Duration::from_secs(secs));
        }
        if out.is_empty() || out.len() > 50 {
            return Err("the retry schedule needs 1 to 50 delays".into());
        }
        Ok(RetrySchedule(out))
    }

    /// When to try again after `attempts` failed attempts; `None`: give up.
    pub fn next_after(&self, attempts: u32, at: Timestamp) -> Option<Timestamp> {
        let delay = self.0.get(attempts.checked_sub(1)? as usize)?;
        let ms = delay.as_millis() as f64 * rand::rng().random_range(0.9..1.1);
        Some(at + (ms / 1000.0).ceil().max(1.0) as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule() {
        let s = RetrySchedule::default();
        let total: u64 = s.0.iter().map(Duration::as_secs).sum();
        assert!(total >= 24 * 3600, "{total}");
        assert_eq!(s.0[0], Duration::from_secs(5));
        assert!(
            s.next_after(1, 1000)
                .is_some_and(|t| (1005..=1006).contains(&t))
        );
        assert_eq!(s.next_after(s.0.len() as u32 + 1, 0), None);
        assert!(RetrySchedule::parse("1s,2x").is_err());
        assert!(RetrySchedule::parse("0s").is_err());
        assert!(RetrySchedule::parse("").is_err());
    }
}
