//! The connection table summed on the router by awk, so that a million rows cross the wire as a
//! few kilobytes. [`CONN_SUMMARY_AWK`] is the program; [`conn_summary`] reads what it prints into
//! the same [`ConnSummary`] that [`super::sum_ip_vs_conn`] makes from the table itself (same
//! totals, same per-real-server states, same top clients with the same tie-break).
//!
//! What the program prints:
//!
//! ```text
//! T <rows counted> <rows skipped: fewer than 9 fields>
//! R <DestIP> <DPrt> <State> <count>        one per real server and state, kernel notation
//! C <FromIP> <count>                       the top clients, most first, ties by address
//! ```

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr};

use super::ParseError;
use super::text::{dec_u64, excerpt, hex_ipv4, hex_u16, numbered_lines};
use crate::model::sample::{ConnSummary, SocketText};

const INPUT: &str = "ip_vs_conn summary";

/// The awk program, for `awk -v top=10 "$CONN_SUMMARY_AWK" /proc/net/ip_vs_conn`. POSIX awk
/// (mawk, gawk, busybox). Clients are keyed `4<hex>` or `6<ipv6>` so that string order is
/// address order with IPv4 first, as `IpAddr` orders them.
pub const CONN_SUMMARY_AWK: &str = r#"
NR == 1 && $1 == "Pro" { next }
NF == 0 { next }
NF < 9 { bad++; next }
{
  n++
  r[$6 " " $7 " " $8]++
  if (top > 0) { if (length($2) == 8) k = "4" $2; else k = "6" $2; c[k]++ }
}
END {
  print "T", n + 0, bad + 0
  for (x in r) print "R", x, r[x]
  m = 0
  for (x in c) {
    v = c[x]
    if (m == top && (v < tv[m] || (v == tv[m] && x > tk[m]))) continue
    if (m < top) m++
    i = m
    while (i > 1 && (v > tv[i - 1] || (v == tv[i - 1] && x < tk[i - 1]))) {
      tv[i] = tv[i - 1]; tk[i] = tk[i - 1]; i--
    }
    tv[i] = v; tk[i] = x
  }
  for (i = 1; i <= m; i++) print "C", substr(tk[i], 2), tv[i]
}
"#;

fn addr(s: &str) -> Option<IpAddr> {
    if s.len() == 8
        && let Some(a) = hex_ipv4(s)
    {
        return Some(IpAddr::V4(a));
    }
    s.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
}

/// Reads the program's output; it must hold the `T` line.
pub fn conn_summary(text: &str) -> Result<ConnSummary, ParseError> {
    let mut summary = ConnSummary::default();
    let mut saw_total = false;
    for (line_no, line) in numbered_lines(text) {
        let err = |msg: String| ParseError::new(INPUT, line_no, msg);
        let f: Vec<&str> = line.split_ascii_whitespace().collect();
        match f.as_slice() {
            [] => {}
            ["T", rows, _skipped] => {
                summary.total =
                    dec_u64(rows).ok_or_else(|| err(format!("bad total {}", excerpt(rows))))?;
                saw_total = true;
            }
            ["R", dest, port, state, count] => {
                let a = addr(dest).ok_or_else(|| err(format!("bad address {}", excerpt(dest))))?;
                let p = hex_u16(port).ok_or_else(|| err(format!("bad port {}", excerpt(port))))?;
                let n =
                    dec_u64(count).ok_or_else(|| err(format!("bad count {}", excerpt(count))))?;
                if !state.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(err(format!("bad state {}", excerpt(state))));
                }
                if n == 0 {
                    continue;
                }
                *summary
                    .by_real_state
                    .entry(SocketText(a, p).to_string())
                    .or_default()
                    .entry((*state).to_string())
                    .or_insert(0) += n;
                *summary.by_state.entry((*state).to_string()).or_insert(0) += n;
            }
            ["C", client, count] => {
                let a =
                    addr(client).ok_or_else(|| err(format!("bad address {}", excerpt(client))))?;
                let n =
                    dec_u64(count).ok_or_else(|| err(format!("bad count {}", excerpt(count))))?;
                summary.top_clients.push((a, n));
            }
            _ => return Err(err(format!("unexpected line {}", excerpt(line)))),
        }
    }
    if !saw_total {
        return Err(ParseError::new(INPUT, 0, "no total line"));
    }
    // Merge keys that differ only in notation (the kernel prints one notation, but be safe).
    let mut merged: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for (k, v) in std::mem::take(&mut summary.by_real_state) {
        let e = merged.entry(k).or_default();
        for (s, n) in v {
            *e.entry(s).or_insert(0) += n;
        }
    }
    summary.by_real_state = merged;
    summary
        .top_clients
        .sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_reads_into_a_summary() {
        let s = conn_summary(
            "T 4 1\nR 0A4D000B 0050 ESTABLISHED 2\nR 0A4D000C 0050 TIME_WAIT 1\n\
             R fd77:0000:0000:0000:0000:0000:0000:0012 0050 TIME_WAIT 1\nC 0A4E0002 3\n\
             C fd78:0000:0000:0000:0000:0000:0000:0002 1\n",
        )
        .expect("parse");
        assert_eq!(s.total, 4);
        assert_eq!(s.by_state.get("TIME_WAIT"), Some(&2));
        assert_eq!(
            s.by_real_state
                .get("[fd77::12]:80")
                .and_then(|m| m.get("TIME_WAIT")),
            Some(&1)
        );
        assert_eq!(
            s.top_clients,
            vec![
                ("10.78.0.2".parse().expect("ip"), 3),
                ("fd78::2".parse().expect("ip"), 1)
            ]
        );
    }

    #[test]
    fn garbage_is_an_error_with_its_line() {
        for bad in [
            "T x 0\n",
            "T 1 0\nR zz 0050 ESTABLISHED 1\n",
            "T 1 0\nhello world\n",
            "R 0A4D000B 0050 ESTABLISHED 1\n",
            "",
        ] {
            let e = conn_summary(bad).expect_err(bad);
            assert!(e.to_string().starts_with(INPUT), "{e}");
        }
    }
}
