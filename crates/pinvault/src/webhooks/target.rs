//! Endpoint URLs and the private-address guard (SSRF): which URLs are accepted,
//! and which addresses may be delivered to without
//! `--allow-private-webhook-targets`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use axum::http::Uri;

/// Longest endpoint URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// A checked endpoint URL.
#[derive(Debug, Clone)]
pub struct Target {
    pub https: bool,
    pub host: String,
    pub port: u16,
    pub path_and_query: String,
}

/// Checks an endpoint URL's form: absolute `http`/`https`, a host, no user
/// name or password, no fragment, at most [`MAX_URL_LEN`] characters.
pub fn parse_url(url: &str) -> Result<Target, String> {
    if url.len() > MAX_URL_LEN {
        return Err(format!("`url` must be at most {MAX_URL_LEN} characters"));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("`url` must not contain spaces or control characters".into());
    }
    if url.contains('#') {
        return Err("`url` must not have a fragment".into());
    }
    let uri: Uri = url
        .parse()
        .map_err(|_| "`url` must be an absolute http or https URL".to_owned())?;
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err("`url` must be an http or https URL".into()),
    };
    let authority = uri
        .authority()
        .ok_or_else(|| "`url` must name a host".to_owned())?;
    if authority.as_str().contains('@') {
        return Err("`url` must not carry a user name or password".into());
    }
    let host = authority.host();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() {
        return Err("`url` must name a host".into());
    }
    let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
    if port == 0 {
        return Err("`url` must not use port 0".into());
    }
    Ok(Target {
        https,
        host: host.to_ascii_lowercase(),
        port,
        path_and_query: uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
    })
}

/// Whether an address may be delivered to without `--allow-private-webhook-targets`.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || a == 0 // "this network"
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || a >= 240 // reserved
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // documentation
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
        || (a == 198 && (18..20).contains(&b))) // benchmarking
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    // IPv4 embedded: mapped (::ffff:a.b.c.d), compatible (::a.b.c.d), NAT64
    // (64:ff9b::a.b.c.d) and 6to4 (2002:AABB:CCDD::): judged by the IPv4 address.
    let v4 = |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if let Some(mapped) = ip.to_ipv4_mapped() {
        return is_public_v4(mapped);
    }
    if s[..6] == [0; 6] {
        // :: and ::1 included (unspecified, loopback).
        return !ip.is_unspecified() && !ip.is_loopback() && is_public_v4(v4(s[6], s[7]));
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0; 4] {
        return is_public_v4(v4(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        return is_public_v4(v4(s[1], s[2]));
    }
    !(ip.is_multicast()
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (s[0] & 0xfe00) == 0xfc00 // unique local
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x2001 && s[1] == 0) // Teredo (tunnels to any IPv4)
        || s[0] == 0x0100 && s[1..4] == [0; 3]) // discard-only
}

/// Refuses, at creation, a URL whose host is an address literal this server
/// would never deliver to (names are checked when delivering, after resolution).
pub fn check_literal(target: &Target, allow_private: bool) -> Result<(), String> {
    if allow_private {
        return Ok(());
    }
    let literal = target.host.parse::<IpAddr>().ok();
    if literal.is_some_and(|ip| !is_public(ip)) || target.host == "localhost" {
        return Err(
            "`url` points to a loopback, private or link-local address, which this server does not deliver to (the operator can allow it with `serve --allow-private-webhook-targets`)".into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = parse_url("https://example.com/hooks?a=1").unwrap();
        assert!(t.https);
        assert_eq!((t.host.as_str(), t.port), ("example.com", 443));
        assert_eq!(t.path_and_query, "/hooks?a=1");
        assert_eq!(parse_url("http://[::1]:8080").unwrap().host, "::1");
        for bad in [
            "ftp://example.com/",
            "https://user:pw@example.com/",
            "https://user@example.com/",
            "example.com/hook",
            "https://example.com/a b",
            "https://example.com/#frag",
            "https://example.com:0/",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
        assert!(parse_url(&format!("https://e.com/{}", "a".repeat(MAX_URL_LEN))).is_err());
    }

    #[test]
    fn addresses() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
            "::127.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
        let t = parse_url("http://127.0.0.1:9/").unwrap();
        assert!(check_literal(&t, false).is_err());
        assert!(check_literal(&t, true).is_ok());
        assert!(check_literal(&parse_url("http://localhost/").unwrap(), false).is_err());
    }
}
