//! The router's awk summary of `/proc/net/ip_vs_conn` (`CONN_SUMMARY_AWK`, run here with this
//! machine's awk exactly as the router script runs it) must read back into the same summary that
//! lbtop's own parser makes from the table: on the lab's real table, and on generated tables with
//! many clients, ties at the top, IPv6 and persistence templates.

use std::io::Write;
use std::process::{Command, Stdio};

use lbtop::source::parse::{CONN_SUMMARY_AWK, conn_summary, sum_ip_vs_conn};

const TOP: usize = 10;

fn awk(table: &str) -> String {
    let mut child = Command::new("awk")
        .args(["-v", &format!("top={TOP}"), CONN_SUMMARY_AWK])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("awk");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(table.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("awk output");
    assert!(out.status.success());
    String::from_utf8(out.stdout).expect("utf-8")
}

fn same_as_lbtop(table: &str) {
    let want = sum_ip_vs_conn(table.as_bytes(), TOP).expect("lbtop's parser");
    let text = awk(table);
    let got = conn_summary(&text).expect("awk summary");
    assert_eq!(got, want, "awk printed:\n{text}");
    assert!(text.len() < 64 * 1024 || table.len() > 10 * text.len());
}

#[test]
fn the_lab_table_sums_the_same() {
    let table = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/ipvs/ip_vs_conn"
    ))
    .expect("fixture");
    same_as_lbtop(&table);
}

/// Rows in the kernel's format (`ip_vs_conn_seq_show`): constructed, not captured.
fn row(client: u32, cport: u16, dest: u32, state: &str) -> String {
    format!(
        "TCP {client:08X} {cport:04X} 0A4D0164 0050 {dest:08X} 0050 {state:<11} {:>7}\n",
        60
    )
}

#[test]
fn generated_tables_with_ties_and_many_clients_sum_the_same() {
    let header =
        "Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n";
    let states = ["ESTABLISHED", "TIME_WAIT", "FIN_WAIT", "SYN_RECV", "CLOSE"];
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for (clients, rows) in [(5u32, 200usize), (40, 400), (3000, 20_000)] {
        let mut t = String::from(header);
        for i in 0..rows {
            let c = 0x0A4E_0000 + (next() % u64::from(clients)) as u32;
            let d = 0x0A4D_000B + (next() % 3) as u32;
            t.push_str(&row(c, i as u16, d, states[(next() % 5) as usize]));
        }
        // Ties at the top: twelve clients with exactly 50 entries each.
        for c in 0..12u32 {
            for p in 0..50u16 {
                t.push_str(&row(0xC000_0200 + c, p, 0x0A4D_000B, "ESTABLISHED"));
            }
        }
        // IPv6 rows and a persistence template (client port 0, state NONE).
        t.push_str("TCP fd78:0000:0000:0000:0000:0000:0000:0002 958C fd79:0000:0000:0000:0000:0000:0000:0100 1F90 fd77:0000:0000:0000:0000:0000:0000:0012 0050 TIME_WAIT        59\n");
        t.push_str("TCP 0A4E0002 0000 0A4D0164 0000 0A4D000B 0000 NONE           300\n");
        same_as_lbtop(&t);
    }
}

#[test]
fn an_empty_table_is_zero() {
    let s = conn_summary(&awk(
        "Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n",
    ))
    .expect("summary");
    assert_eq!(s.total, 0);
    assert!(s.top_clients.is_empty() && s.by_state.is_empty());
}
