//! `call_webhook`: a signed HTTP request to a URL the workflow names.
//!
//! The receiver checks `X-MyCRM-Signature: sha256=<hex>`, the HMAC-SHA256 with the workflow's
//! secret over `<X-MyCRM-Timestamp>.<body>`, and may drop repeats by `X-MyCRM-Delivery`
//! (the same for every attempt of a step). Targets on loopback, private, link-local (cloud
//! metadata included) and other non-public addresses are refused unless the configuration
//! allows them; the address checked is the one connected to (no second DNS lookup), and
//! redirects are not followed, so neither DNS rebinding nor a redirect gets around the check.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hmac::{Hmac, Mac};
use reqwest::Url;
use sha2::Sha256;

/// At most this much of a response is kept in the step log.
const RESPONSE_EXCERPT: usize = 1_000;

/// An absolute http(s) URL without credentials.
pub fn parse_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text.trim()).map_err(|_| format!("{text:?} is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("only http and https URLs".into());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("the URL has no host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("put credentials in a header, not in the URL".into());
    }
    Ok(url)
}

/// Headers the workflow may set (not the ones the request itself owns).
pub fn check_header(name: &str, value: &str) -> Result<(), String> {
    let lower = name.to_ascii_lowercase();
    if ["host", "content-length", "transfer-encoding", "connection"].contains(&lower.as_str())
        || lower.starts_with("x-mycrm-")
    {
        return Err(format!("the {name} header is set by MyCRM"));
    }
    reqwest::header::HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("{name:?} is not a header name"))?;
    if value.contains(['\r', '\n']) {
        return Err("a header value is one line".into());
    }
    Ok(())
}

/// Whether an address is on the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT
                || (a == 192 && b == 0)
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80) // link local
        }
    }
}

/// One signed request.
pub struct Request<'a> {
    pub method: &'a str,
    pub url: &'a str,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub secret: &'a str,
    /// The same for every attempt of one step.
    pub delivery_id: String,
}

/// What the target answered.
#[derive(Debug, serde::Serialize)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

/// The signature header's value.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(format!("{timestamp}.{body}").as_bytes());
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// Sends the request; a non-2xx answer or a network problem is an error (the step retries).
pub async fn call(
    request: Request<'_>,
    timeout: Duration,
    allow_private: bool,
) -> Result<Response, String> {
    let url = parse_url(request.url)?;
    let host = url.host_str().unwrap_or_default().to_string();
    let port = url.port_or_known_default().unwrap_or(80);
    let target = resolve(&host, port, allow_private).await?;
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .resolve(&host, target)
        .user_agent("MyCRM-Workflows/1")
        .build()
        .map_err(|e| format!("could not set up the HTTP client: {e}"))?;
    let method = reqwest::Method::from_bytes(request.method.as_bytes())
        .map_err(|_| format!("{} is not an HTTP method", request.method))?;
    let timestamp = chrono::Utc::now().timestamp();
    let mut builder = client
        .request(method, url)
        .header("content-type", "application/json")
        .header("x-mycrm-timestamp", timestamp.to_string())
        .header(
            "x-mycrm-signature",
            signature(request.secret, timestamp, &request.body),
        )
        .header("x-mycrm-delivery", &request.delivery_id);
    for (name, value) in &request.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let answer = builder
        .body(request.body)
        .send()
        .await
        .map_err(|e| describe(&e))?;
    let status = answer.status().as_u16();
    let body = answer.text().await.unwrap_or_default();
    let body: String = body.chars().take(RESPONSE_EXCERPT).collect();
    if !(200..300).contains(&status) {
        return Err(format!("the target answered HTTP {status}"));
    }
    Ok(Response { status, body })
}

async fn resolve(host: &str, port: u16, allow_private: bool) -> Result<SocketAddr, String> {
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|_| format!("could not resolve {host}"))?
        .collect();
    let first = *addresses
        .first()
        .ok_or_else(|| format!("could not resolve {host}"))?;
    if !allow_private && addresses.iter().any(|a| !is_public(a.ip())) {
        return Err(format!(
            "{host} resolves to a loopback, private or link-local address; webhooks go to \
             public addresses only"
        ));
    }
    Ok(first)
}

/// A network error without the URL's query (it may hold a token).
fn describe(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        "the target did not answer in time".into()
    } else if err.is_connect() {
        "could not connect to the target".into()
    } else {
        "the request to the target failed".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_and_private_addresses() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn urls_and_headers() {
        assert!(parse_url("https://hooks.example.com/x?y=1").is_ok());
        assert!(parse_url("ftp://example.com").is_err());
        assert!(parse_url("https://user:pw@example.com").is_err());
        assert!(parse_url("not a url").is_err());
        assert!(check_header("Authorization", "Bearer x").is_ok());
        assert!(check_header("Host", "x").is_err());
        assert!(check_header("X-MyCRM-Signature", "x").is_err());
        assert!(check_header("X-Evil", "a\r\nb").is_err());
    }

    #[test]
    fn signature_is_hmac_sha256_over_timestamp_and_body() {
        // Computed independently: Python's hmac.new(b"secret", b"1700000000.{}", sha256).
        assert_eq!(
            signature("secret", 1700000000, "{}"),
            "sha256=b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163"
        );
    }
}
