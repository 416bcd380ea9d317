//! Axis labels shared by `varve bench --plot` and the peer harness's plot
//! (which includes this file by path).

/// A records/s label: `100`, `10k`, `1M`.
pub fn rate(v: f64) -> String {
    if v >= 1e6 {
        format!("{}M", short(v / 1e6))
    } else if v >= 1e3 {
        format!("{}k", short(v / 1e3))
    } else {
        short(v)
    }
}

/// A latency label from nanoseconds: `50 ns`, `2 us`, `1.5 ms`.
pub fn ns(v: f64) -> String {
    if v >= 1e6 {
        format!("{} ms", short(v / 1e6))
    } else if v >= 1e3 {
        format!("{} us", short(v / 1e3))
    } else {
        format!("{} ns", short(v))
    }
}

/// At most three decimals, without trailing zeros (tick values carry float noise).
fn short(v: f64) -> String {
    format!("{}", (v * 1000.0).round() / 1000.0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn labels_are_short_at_every_scale() {
        assert_eq!(super::rate(100.0), "100");
        assert_eq!(super::rate(10_000.0), "10k");
        assert_eq!(super::rate(2_500_000.000_000_4), "2.5M");
        assert_eq!(super::ns(50.0), "50 ns");
        assert_eq!(super::ns(2000.0), "2 us");
        assert_eq!(super::ns(1_500_000.0), "1.5 ms");
    }
}
