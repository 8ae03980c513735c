//! What runs on the hosts: one small fixed POSIX-sh program per connection, sent once on the
//! stdin of `exec /bin/sh -s`. It greets, then answers each request line with one reply closed
//! by `@@lbtop end SEQ`. Nothing from the configuration, IPVS or the operator is ever put into
//! it: the program is constant text (the router's differs only by one of three constant
//! `sudo` lines), and a request is a fixed word, a sequence number and fixed part names, which
//! the program checks against its own patterns and refuses (exits) otherwise.
//!
//! A node poll reads its `/proc` files with the shell's own `read`, so it starts no process at
//! all (nor does `p SEQ dr`, which adds the direct-routing checks' `/proc/net`, `/proc/sys` and
//! `/sys/class/net` files); a router poll of an unchanged or slightly changed table starts no
//! process where the router has `perl` and `gzip` (one reader of `/proc/net/ip_vs` is kept for
//! the session, [`KEPT_READER`]; it starts `gzip` when the table goes whole), and one `gzip`
//! elsewhere; ipvsadm and awk run only for the parts asked for.

use std::str::FromStr;

use crate::source::parse::CONN_SUMMARY_AWK;

/// How many top clients of the connection table the router reports.
pub const TOP_CLIENTS: usize = crate::source::local::TOP_CLIENTS;

/// The program goes to this on stdin, so no quoting of it is ever needed, under any login shell.
pub const PROGRAM_COMMAND: &str = "exec /bin/sh -s";

/// The first line of the node program's greeting.
pub(crate) const NODE_HELLO: &str = "lbtop-node 2";
/// The first line of the router program's greeting.
pub(crate) const ROUTER_HELLO: &str = "lbtop-router 2";
/// The line that closes the greeting.
pub(crate) const READY: &str = "@@lbtop ready";

/// The line that closes the reply to request `seq`.
pub(crate) fn end_line(seq: u64) -> String {
    format!("@@lbtop end {seq}")
}

/// The whole program is one `{ … }` group, so the shell has read all of it before it prints its
/// greeting: a request sent after the greeting can never be taken for program text.
///
/// A `p SEQ dr` poll also sends the direct-routing checks' files: each device's `arp_ignore`
/// and `arp_announce` every time; the local addresses, routes, `rp_filter` and device flags read
/// again every fifth such poll and at the first after a plain one, and sent from the program's
/// memory in between.
///
/// `/proc/stat` is read up to its last `cpu` line (counted at start, and recounted every 60
/// polls and whenever a line is not a cpu line, for CPUs brought on- or offline), `meminfo` up
/// to `SwapFree`: the rest of those files (the long `intr` line above all) is never read.
pub const NODE_PROGRAM: &str = r#"{
read -r h </proc/sys/kernel/hostname
read -r r </proc/sys/kernel/osrelease
n=0
while IFS= read -r l; do case $l in cpu*) n=$((n+1)) ;; *) break ;; esac; done </proc/stat
addrs() {
  T=
  A="@@lbtop fib_trie
"
  i=0; a=; f=0
  if [ -r /proc/net/fib_trie ]; then
    while [ $i -lt 20000 ] && IFS= read -r l; do
      i=$((i+1))
      case $l in
        Local:*) [ $f = 1 ] && break ;;
        *'|-- '*) a=$l ;;
        *' LOCAL'*) f=1; A="$A$a
$l
" ;;
      esac
    done </proc/net/fib_trie
    [ $i -lt 20000 ] || T=1
  fi
  for x in if_inet6 route; do
    A="$A@@lbtop $x
"
    [ -r /proc/net/$x ] || continue
    i=0
    while [ $i -lt 256 ] && IFS= read -r l; do i=$((i+1)); A="$A$l
"; done </proc/net/$x
    [ $i -lt 256 ] || T=1
  done
  A="$A@@lbtop devflags
"
  i=0
  for d in /proc/sys/net/ipv4/conf/*; do
    [ $i -lt 64 ] || { T=1; break; }
    i=$((i+1)); v=${d##*/}; z=; f=
    read -r z <"$d/rp_filter"
    [ -r "/sys/class/net/$v/flags" ] && read -r f <"/sys/class/net/$v/flags"
    A="$A$v ${z:--} ${f:--}
"
  done
}
j=0
dr() {
  if [ $j -le 0 ]; then addrs; j=5; fi
  j=$((j-1))
  o="$o$A@@lbtop netconf
"
  i=0
  for d in /proc/sys/net/ipv4/conf/*; do
    [ $i -lt 64 ] || { T=1; break; }
    i=$((i+1)); x=; y=
    read -r x <"$d/arp_ignore"; read -r y <"$d/arp_announce"
    o="$o${d##*/} ${x:--} ${y:--}
"
  done
  [ -z "$T" ] || o="$o@@lbtop truncated
"
}
printf 'lbtop-node 2\n@@lbtop hostname\n%s\n@@lbtop osrelease\n%s\n@@lbtop ready\n' "$h" "$r"
k=0
while read -r q s w; do
  case $q in p) ;; *) exit 2 ;; esac
  case $s in ''|*[!0-9]*) exit 2 ;; esac
  case $w in ''|dr) ;; *) exit 2 ;; esac
  m=$n; k=$((k+1))
  if [ $k -ge 60 ]; then k=0; m=4096; fi
  o='@@lbtop stat
'
  i=0
  while [ $i -lt $m ] && IFS= read -r l; do
    case $l in cpu*) o="$o$l
"; i=$((i+1)) ;; *) break ;; esac
  done </proc/stat
  n=$i
  o="$o@@lbtop meminfo
"
  i=0
  while [ $i -lt 64 ] && IFS= read -r l; do
    i=$((i+1)); o="$o$l
"
    case $l in SwapFree:*) break ;; esac
  done </proc/meminfo
  read -r l </proc/loadavg
  o="$o@@lbtop loadavg
$l
"
  read -r l </proc/uptime
  if [ "$w" = dr ]; then o="$o@@lbtop uptime
$l
"; dr; printf '%s@@lbtop end %s\n' "$o" "$s"; continue; fi
  j=0
  printf '%s@@lbtop uptime\n%s\n@@lbtop end %s\n' "$o" "$l" "$s"
done
exit 0
}
"#;

/// Whether the router program runs ipvsadm through `sudo -n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SudoMode {
    /// When the login user is not root.
    #[default]
    Auto,
    Always,
    Never,
}

impl SudoMode {
    /// The constant shell line that sets `S` to the prefix ipvsadm runs with: the router
    /// program and the weight changes over SSH (`control::ssh`) both start with it.
    pub(crate) fn program_line(self) -> &'static str {
        match self {
            SudoMode::Auto => "S=; [ \"$(id -u)\" = 0 ] || S='sudo -n'\n",
            SudoMode::Always => "S='sudo -n'\n",
            SudoMode::Never => "S=\n",
        }
    }
}

impl FromStr for SudoMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(SudoMode::Auto),
            "always" => Ok(SudoMode::Always),
            "never" => Ok(SudoMode::Never),
            other => Err(format!("{other:?}: use auto, always or never")),
        }
    }
}

/// A part of the router's state that is not read at every poll. Each is one word of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouterPart {
    /// `ipvsadm -Ln --exact --stats`: per-service and per-real counters.
    Stats,
    /// `--thresholds`: each real's connection thresholds.
    Thresholds,
    /// `--persistent-conn`: each real's persistent-connection count.
    Persistent,
    /// `--tun-info` (ipvsadm 1.31): the plain view with tunnel encapsulations; also the
    /// persistence timeouts and firewall-mark families `/proc` cannot tell.
    TunInfo,
    /// The plain view, where `--tun-info` is not known.
    Plain,
    /// The connection table summed by awk.
    Conn,
    /// The programs managing the table (keepalived, ldirectord, pulse) in the process table:
    /// each `/proc/PID/comm` read with the shell's `read`, in this network namespace.
    Owner,
    /// `ipvsadm -L -n --daemon`: the connection-sync daemons.
    Daemon,
}

impl RouterPart {
    pub const ALL: [RouterPart; 8] = [
        RouterPart::Stats,
        RouterPart::Thresholds,
        RouterPart::Persistent,
        RouterPart::TunInfo,
        RouterPart::Plain,
        RouterPart::Conn,
        RouterPart::Owner,
        RouterPart::Daemon,
    ];

    /// One of ipvsadm's views (not the connection table or the process table).
    pub fn is_view(self) -> bool {
        !matches!(
            self,
            RouterPart::Conn | RouterPart::Owner | RouterPart::Daemon
        )
    }

    /// The word in requests and in the reply's section names.
    pub fn word(self) -> &'static str {
        match self {
            RouterPart::Stats => "stats",
            RouterPart::Thresholds => "thresholds",
            RouterPart::Persistent => "persistent",
            RouterPart::TunInfo => "tun",
            RouterPart::Plain => "plain",
            RouterPart::Conn => "conn",
            RouterPart::Owner => "owner",
            RouterPart::Daemon => "daemon",
        }
    }

    #[cfg(test)]
    pub(crate) fn from_word(w: &str) -> Option<RouterPart> {
        RouterPart::ALL.into_iter().find(|p| p.word() == w)
    }
}

/// A node poll request; with `dr`, the node also sends what the direct-routing checks read
/// (its local addresses, routes and per-device ARP settings).
pub(crate) fn node_request(seq: u64, dr: bool) -> String {
    if dr {
        format!("p {seq} dr\n")
    } else {
        format!("p {seq}\n")
    }
}

/// A router request: `/proc` when `with_proc` (word `p`; else `q`), and the parts named.
pub(crate) fn router_request(seq: u64, with_proc: bool, parts: &[RouterPart]) -> String {
    let mut s = format!("{} {seq}", if with_proc { "p" } else { "q" });
    for p in parts {
        s.push(' ');
        s.push_str(p.word());
    }
    s.push('\n');
    s
}

const ROUTER_HEAD: &str = "{\nPATH=\"$PATH:/usr/sbin:/sbin\"; export PATH\n";

/// The router program after its sudo line. A `p` request: `/proc/net/ip_vs` and `ip_vs_stats`,
/// the forwarding and expiry settings, and the local addresses (the `LOCAL` entries of
/// `fib_trie` and `if_inet6`, up to 4,096 lines in all), all with the shell's `read`; `q` skips
/// them. The shell's `read` takes a byte per system call, so a router whose addresses are more
/// than those 4,096 lines (a full routing table) is not asked for them again for the next 150
/// polls (5 minutes at 2 s): its VIP checks are then not made, and nothing else is lost.
/// `/proc/net/ip_vs` goes through the [`KEPT_READER`] where perl is there (it sends what changed
/// since its last read), else whole at every poll. Whole tables and ipvsadm's views are sent as
/// one `gzip -1` member each, after a `@@lbtop gzip` line (see [`super::reply::expand`]): at 1,000
/// services × 10 reals, 640 KB of `/proc` becomes 8 KB, and the router's sshd, which costs more
/// per byte it encrypts than gzip does per byte it packs, sends a 80th of it (BENCHMARKS.md).
/// Where gzip is missing or fails, one `tr` squeezes the runs of spaces that pad the columns
/// instead (half the bytes). An empty connection table is answered without starting awk. Then
/// each part asked for, each followed by
/// the shell's own `/proc/$$/stat` line, whose CPU times (its own and its children's) tell lbtop
/// what each part cost the router. lbtop runs the program twice on a connection: one answers
/// the `p` polls on the interval, the other the `q` requests for the costlier parts, so that a
/// slow ipvsadm never delays `/proc`.
const ROUTER_BODY: &str = r#"A=$(command -v ipvsadm 2>/dev/null)
T=$(getconf CLK_TCK 2>/dev/null)
case $T in ''|*[!0-9]*) T=100 ;; esac
printf 'lbtop-router 2\n@@lbtop hz %s\n@@lbtop ready\n' "$T"
cpu() { read -r c </proc/$$/stat; echo "@@lbtop cpu $1 $c"; }
b=0; K=2
if printf x | gzip -1 -c >/dev/null 2>&1; then
  sq() { echo "@@lbtop gzip"; gzip -1 -c 2>/dev/null 4>&- 5<&-; }
  command -v perl >/dev/null 2>&1 && K=0
elif command -v tr >/dev/null 2>&1; then sq() { tr -s ' '; }; else sq() { cat; }; fi
kp() {
  D=$(mktemp -d 2>/dev/null) || return 1
  mkfifo "$D/q" "$D/a" 2>/dev/null || { rm -rf "$D"; return 1; }
  perl -e 'KEPT_READER' <"$D/q" 3>"$D/a" &
  exec 4>"$D/q" 5<"$D/a"
  rm -rf "$D"
  k=; read -r k <&5 || k=
  [ "$k" = h ] || { exec 4>&- 5<&-; return 1; }
}
view() {
  echo "@@lbtop ipvsadm $1"
  if [ -z "$A" ]; then echo "@@lbtop ipvsadm-missing"; return; fi
  { $S "$A" -L -n --exact $2 2>&1 </dev/null 4>&- 5<&-; echo "@@lbtop rc $?"; } | sq
}
while read -r q s w; do
  case $q in p|q) ;; *) exit 2 ;; esac
  case $s in ''|*[!0-9]*) exit 2 ;; esac
  cpu start
  if [ "$q" = p ]; then
    if [ $K = 3 ]; then K=2; kp && K=1; fi
    [ $K = 0 ] && K=3
    if [ $K = 1 ]; then
      trap '' PIPE; echo r 2>/dev/null >&4; trap - PIPE
      k=; read -r k <&5 || k=
      if [ "$k" != k ]; then K=2; exec 4>&- 5<&-; echo; echo "@@lbtop ip_vs lost"; fi
    fi
    if [ $K != 1 ]; then
      echo "@@lbtop ip_vs"
      if [ -r /proc/net/ip_vs ]; then sq </proc/net/ip_vs; else echo "@@lbtop absent"; fi
    fi
    if [ -r /proc/net/ip_vs_stats ]; then
      echo "@@lbtop ip_vs_stats"
      while IFS= read -r l; do echo "$l"; done </proc/net/ip_vs_stats
    fi
    echo "@@lbtop sysctl"
    for f in ipv4/ip_forward ipv4/vs/expire_nodest_conn ipv4/vs/expire_quiescent_template; do
      v=-; [ -r /proc/sys/net/$f ] && read -r v </proc/sys/net/$f; echo "${f##*/} $v"
    done
    if [ $b -le 0 ]; then
    echo "@@lbtop fib_trie"
    i=0; a=; f=0
    if [ -r /proc/net/fib_trie ]; then
      while [ $i -lt 4096 ] && IFS= read -r l; do
        i=$((i+1))
        case $l in
          Local:*) [ $f = 1 ] && break ;;
          *'|-- '*) a=$l ;;
          *' LOCAL'*) f=1; echo "$a"; echo "$l" ;;
        esac
      done </proc/net/fib_trie
    fi
    echo "@@lbtop if_inet6"
    if [ -r /proc/net/if_inet6 ]; then
      while [ $i -lt 4096 ] && IFS= read -r l; do i=$((i+1)); echo "$l"; done </proc/net/if_inet6
    fi
    [ $i -lt 4096 ] || { echo "@@lbtop addrs-truncated"; b=150; }
    else b=$((b-1)); fi
  fi
  cpu proc
  for x in $w; do
    case $x in
      stats) view stats --stats ;;
      thresholds) view thresholds --thresholds ;;
      persistent) view persistent --persistent-conn ;;
      tun) view tun --tun-info ;;
      plain) view plain ;;
      conn)
        if [ -r /proc/net/ip_vs_conn ]; then
          echo "@@lbtop conn"
          if ! { read -r l && read -r l; } </proc/net/ip_vs_conn; then echo "T 0 0"; else
          awk -v top="#;

const ROUTER_TAIL: &str = r#"' /proc/net/ip_vs_conn </dev/null 4>&- 5<&-
          fi
        fi ;;
      owner)
        echo "@@lbtop owner"
        for d in /proc/[0-9]*; do
          c=; read -r c 2>/dev/null <"$d/comm" || continue
          case $c in keepalived|ldirectord|pulse|nanny) ;; *) continue ;; esac
          if [ "$d/ns/net" -ef /proc/$$/ns/net ] || ! [ -e "$d/ns/net" ]; then echo "$c"; fi
        done ;;
      daemon)
        echo "@@lbtop daemon"
        if [ -z "$A" ]; then echo "ipvsadm is not installed"; else
          $S "$A" -L -n --daemon 2>&1 </dev/null 4>&- 5<&-; fi ;;
      *) exit 2 ;;
    esac
    cpu $x
  done
  echo "@@lbtop end $s"
done
exit 0
}
"#;

/// The reader of `/proc/net/ip_vs` kept for the session where the router has `perl` (Debian's
/// essential `perl-base`; no module is used) and `gzip`: started by the program at its second `p`
/// request (a `--once` poll does not pay for it), it reads the table at each request (`r` on its stdin, a FIFO), writes its section
/// straight to the program's stdout, and says `k` on fd 3 (another FIFO) when it is done. The
/// FIFOs are unlinked as soon as both ends are open, and the reader says `h` there once it
/// runs. The section is one of:
/// - `@@lbtop ip_vs same`: the table is byte for byte what it sent last;
/// - `@@lbtop ip_vs patch`, then `OFFSET LENGTH`, that many bytes and a newline, for each run of
///   whole lines that changed, when the table kept its length (counters and weights change in
///   place: their columns are padded) and the runs are at most a 32nd of it and 1 MiB (sent as
///   they are, the runs must not cost the router's sshd more than packing the table would);
/// - else the table whole, as the `gzip` per poll sends it (`@@lbtop gzip` and one member, from a
///   `gzip` the reader starts).
///
/// A poll with the table unchanged or a few lines moved starts no process. Most of what is
/// left is the kernel formatting the table (BENCHMARKS.md, "Router cost while watching"). Where
/// the reader ends without its `k`, the program says `@@lbtop ip_vs lost` (what it wrote may be
/// cut, and a `gzip` it started may still be writing): lbtop refuses the reply and starts the
/// program again. Where perl is missing or does not start, the program sends the table whole
/// through a `gzip` per poll. The reader's CPU is not in the program's cost lines (the shell
/// reaps it only when the session ends). The text has no `'`.
const KEPT_READER: &str = r#"$|=1;my($p,$h)=("",0);open(my $A,">&=",3) or exit 1;select((select($A),$|=1)[0]);print $A "h\n";
while(<STDIN>){
my($t,$f)=("");
if(!open($f,"<","/proc/net/ip_vs")){print "\@\@lbtop ip_vs\n\@\@lbtop absent\n";$h=0;print $A "k\n";next}
while(length($t)<268435456){my $k=sysread($f,$t,1048576,length $t);last if !$k}
close $f;
if($h&&$t eq $p){print "\@\@lbtop ip_vs same\n";print $A "k\n";next}
my($o,$m);
if($h&&length($t)==length($p)){
my($x,$s,$e)=($t^$p,-1,-1);$o="";$m=length($t)/32;$m=1048576 if $m>1048576;
while($x=~/[^\0]+/g){
my $u=$-[0]?rindex($t,"\n",$-[0]-1)+1:0;my $v=index($t,"\n",$+[0]-1);$v=$v<0?length($t):$v+1;
if($s>=0&&$u<=$e){$e=$v if $v>$e;next}
$o.="$s ".($e-$s)."\n".substr($t,$s,$e-$s)."\n" if $s>=0;
($s,$e)=($u,$v);
if(length($o)>$m){undef $o;last}}
$o.="$s ".($e-$s)."\n".substr($t,$s,$e-$s)."\n" if defined $o&&$s>=0}
if(defined $o&&length($o)<=$m){print "\@\@lbtop ip_vs patch\n$o"}
else{print "\@\@lbtop ip_vs\n\@\@lbtop gzip\n";my $g;if(open($g,"|-","gzip","-1","-c")){print $g $t;close $g}}
($p,$h)=($t,1);print $A "k\n"}"#;

/// The whole router program for a sudo mode. Built from constants only.
pub fn router_program(sudo: SudoMode) -> String {
    let mut s = String::with_capacity(4096);
    s.push_str(ROUTER_HEAD);
    s.push_str(sudo.program_line());
    s.push_str(ROUTER_BODY);
    s.push_str(&TOP_CLIENTS.to_string());
    s.push_str(" '");
    s.push_str(CONN_SUMMARY_AWK);
    s.push_str(ROUTER_TAIL);
    s.replace("KEPT_READER", KEPT_READER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_router_program_is_constant_text_per_sudo_mode() {
        let auto = router_program(SudoMode::Auto);
        assert!(auto.starts_with(ROUTER_HEAD));
        assert!(auto.ends_with("done\nexit 0\n}\n"));
        assert!(!CONN_SUMMARY_AWK.contains('\''));
        assert!(!KEPT_READER.contains('\''));
        assert!(auto.contains(KEPT_READER) && !auto.contains("KEPT_READER"));
        // Every variable declared, no warning: a typo is a compile error, not a silent global.
        let checked = std::process::Command::new("perl")
            .args(["-Mstrict", "-Mwarnings", "-c", "-e", KEPT_READER])
            .output()
            .expect("perl (Debian's perl-base)");
        assert!(checked.status.success(), "{checked:?}");
        assert_eq!(String::from_utf8_lossy(&checked.stderr), "-e syntax OK\n");
        // The script that measures the reader's cost on a router runs this very text.
        let script = include_str!("../../../scripts/router-proc-read-cost");
        assert!(script.contains(&format!("READER='{KEPT_READER}'")));
        // The awk program is the only quoted text besides the fixed sudo word and printf formats.
        assert!(auto.contains(CONN_SUMMARY_AWK));
        assert!(router_program(SudoMode::Never).contains("\nS=\n"));
        assert!(router_program(SudoMode::Always).contains("\nS='sudo -n'\n"));
    }

    /// The router program run by `sh` with `/proc/net/fib_trie` read from `fib`: the replies to
    /// `polls` plain polls.
    fn run_router_program(fib: &std::path::Path, polls: u64) -> String {
        let mut router = LocalRouter::start(&[("/proc/net/fib_trie", fib)], None);
        (0..polls).map(|_| router.poll_text()).collect()
    }

    #[test]
    fn a_router_whose_addresses_overflow_the_read_is_not_asked_again_for_150_polls() {
        let dir = tempfile::tempdir().expect("tmp");
        let fib = dir.path().join("fib_trie");
        let routes: String = (0..5000)
            .map(|i| {
                format!(
                    "     |-- 10.{}.{}.0\n        /24 link UNICAST\n",
                    i / 256,
                    i % 256
                )
            })
            .collect();
        std::fs::write(&fib, format!("Main:\n  +-- 0.0.0.0/0 3 0 5\n{routes}")).expect("fib");
        let out = run_router_program(&fib, 3);
        let replies: Vec<&str> = out.split("@@lbtop end ").collect();
        assert_eq!(replies.len(), 4, "{out}");
        assert!(
            replies[0].contains("@@lbtop addrs-truncated"),
            "{}",
            replies[0]
        );
        for r in &replies[1..3] {
            assert!(!r.contains("@@lbtop fib_trie"), "{r}");
            assert!(r.contains("@@lbtop sysctl"), "the rest still comes: {r}");
        }
        // A small table is read at every poll.
        std::fs::write(
            &fib,
            "Local:\n  +-- 10.0.0.0/8 2 0 2\n     |-- 10.0.0.1\n        /32 host LOCAL\n",
        )
        .expect("fib");
        let out = run_router_program(&fib, 2);
        assert_eq!(out.matches("@@lbtop fib_trie").count(), 2, "{out}");
        assert!(!out.contains("addrs-truncated"), "{out}");
    }

    /// The router program run by `sh`, answering polls one at a time as over SSH.
    struct LocalRouter {
        child: std::process::Child,
        stdin: std::process::ChildStdin,
        stdout: std::io::BufReader<std::process::ChildStdout>,
        seq: u64,
        last: Option<String>,
    }

    impl LocalRouter {
        /// Each `(file, instead)` read from `instead` (`/proc/net/ip_vs` also names the
        /// `ip_vs_stats` and `ip_vs_conn` beside it); `path`: the program's PATH.
        fn start(
            files: &[(&str, &std::path::Path)],
            path: Option<&std::path::Path>,
        ) -> LocalRouter {
            use std::io::Write;
            let program = files
                .iter()
                .fold(router_program(SudoMode::Never), |p, (file, instead)| {
                    p.replace(file, &instead.display().to_string())
                });
            let mut sh = std::process::Command::new("/bin/sh");
            if let Some(path) = path {
                sh.env("PATH", path);
            }
            let mut child = sh
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("sh");
            let mut stdin = child.stdin.take().expect("stdin");
            stdin.write_all(program.as_bytes()).expect("program");
            let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
            let mut line = String::new();
            while !line.starts_with("@@lbtop ready") {
                line.clear();
                let n = std::io::BufRead::read_line(&mut stdout, &mut line).expect("greeting");
                assert!(n > 0, "the program ended before its greeting");
            }
            LocalRouter {
                child,
                stdin,
                stdout,
                seq: 0,
                last: None,
            }
        }

        /// One poll: the reply as the program sent it (its `ip_vs` marker line), and the table
        /// lbtop makes of it.
        fn poll(&mut self) -> (String, String) {
            let text = self.poll_text();
            let marker = text
                .lines()
                .find(|l| l.starts_with("@@lbtop ip_vs") && !l.starts_with("@@lbtop ip_vs_"))
                .unwrap_or("")
                .to_string();
            let whole = super::super::reply::with_whole_ip_vs(text, &mut self.last).expect("whole");
            let table = super::super::reply::Sections::split(&whole)
                .get("ip_vs")
                .expect("an ip_vs section")
                .to_string();
            (marker, table)
        }

        /// One poll's reply, its gzip members expanded.
        fn poll_text(&mut self) -> String {
            use std::io::{BufRead, Write};
            self.seq += 1;
            self.stdin
                .write_all(router_request(self.seq, true, &[]).as_bytes())
                .expect("poll");
            let end = format!("@@lbtop end {}\n", self.seq);
            let mut raw = Vec::new();
            while !raw.ends_with(end.as_bytes()) {
                let n = self.stdout.read_until(b'\n', &mut raw).expect("reply");
                assert!(
                    n > 0,
                    "the program ended: {}",
                    String::from_utf8_lossy(&raw)
                );
            }
            super::super::reply::expand(&raw, 1 << 24).expect("expands")
        }
    }

    impl Drop for LocalRouter {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    /// The lab's kind of table: `services` services of ten real servers each.
    fn ip_vs_table(services: usize, active: usize) -> String {
        let mut t = String::from(
            "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port Forward Weight ActiveConn InActConn\n",
        );
        for s in 0..services {
            t.push_str(&format!("TCP  0A4E{s:04X}:0050 wlc \n"));
            for r in 0..10 {
                t.push_str(&format!(
                    "  -> 0A4D02{r:02X}:1F40      Route   1      {active:<10} 0         \n"
                ));
            }
        }
        t
    }

    #[test]
    fn the_kept_reader_sends_the_table_whole_then_same_or_the_lines_that_changed() {
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("ip_vs");
        let mut router = LocalRouter::start(&[("/proc/net/ip_vs", &file)], None);
        let check = |router: &mut LocalRouter, table: &str, marker: &str| {
            std::fs::write(&file, table).expect("table");
            let (sent, got) = router.poll();
            assert_eq!(sent, marker, "what the program sent");
            assert_eq!(got, table, "the table lbtop makes of it");
        };
        let r = &mut router;
        let table = ip_vs_table(100, 0);
        // The first poll without the reader (a `--once` does not start it), then its first read.
        check(r, &table, "@@lbtop ip_vs");
        check(r, &table, "@@lbtop ip_vs");
        check(r, &table, "@@lbtop ip_vs same");
        // Two real servers' connection counts: two runs of one line each.
        let mut moved = table.clone();
        let line = "Route   1      0          0";
        let first = moved.find(line).expect("a real");
        moved.replace_range(first..first + line.len(), "Route   1      7          0");
        let last = moved.rfind(line).expect("a real");
        moved.replace_range(last..last + line.len(), "Route   0      12         3");
        check(r, &moved, "@@lbtop ip_vs patch");
        check(r, &moved, "@@lbtop ip_vs same");
        check(r, &table, "@@lbtop ip_vs patch");
        // A service more: the length changes, the table goes whole.
        check(r, &ip_vs_table(101, 0), "@@lbtop ip_vs");
        // Every count moved: more than a 32nd of the table, whole again.
        check(r, &ip_vs_table(101, 5), "@@lbtop ip_vs");
        // IPVS unloaded, then loaded again: absent, then whole.
        std::fs::remove_file(&file).expect("rm");
        let (sent, got) = r.poll();
        assert_eq!((sent.as_str(), got.as_str()), ("@@lbtop ip_vs", ""));
        assert!(r.last.is_none());
        check(r, &ip_vs_table(3, 0), "@@lbtop ip_vs");
        check(r, &ip_vs_table(3, 0), "@@lbtop ip_vs same");
        // The reader killed between two polls: the program goes on with a gzip per poll.
        let sh = r.child.id();
        let children = std::fs::read_to_string(format!("/proc/{sh}/task/{sh}/children"))
            .expect("the program's children");
        let reader = children
            .split_whitespace()
            .find(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c == "perl\n")
            })
            .expect("the kept reader")
            .to_string();
        let killed = std::process::Command::new("kill")
            .args(["-KILL", &reader])
            .status()
            .expect("kill");
        assert!(killed.success());
        // lbtop refuses that reply (and would start the program again); this program goes on
        // with a gzip per poll.
        let table = ip_vs_table(4, 0);
        std::fs::write(&file, &table).expect("table");
        let text = r.poll_text();
        assert!(text.contains("\n@@lbtop ip_vs lost\n"), "{text}");
        let e = super::super::reply::with_whole_ip_vs(text, &mut r.last).expect_err("lost");
        assert!(e.to_string().contains("ended"), "{e}");
        check(r, &table, "@@lbtop ip_vs");
        check(r, &table, "@@lbtop ip_vs");
    }

    #[test]
    fn without_perl_the_table_goes_whole_through_gzip_at_every_poll() {
        let dir = tempfile::tempdir().expect("tmp");
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).expect("bin");
        for tool in ["gzip", "cat", "mktemp", "mkfifo", "rm", "getconf", "id"] {
            let Some(found) = which(tool) else { continue };
            std::os::unix::fs::symlink(found, bin.join(tool)).expect("link");
        }
        let file = dir.path().join("ip_vs");
        let table = ip_vs_table(20, 0);
        std::fs::write(&file, &table).expect("table");
        // No perl on the PATH (the program adds /usr/sbin and /sbin, which on some systems are
        // /usr/bin: a `perl` of ours comes first), then a perl that does not start.
        let sbin_perl = ["/usr/sbin/perl", "/sbin/perl"]
            .iter()
            .any(|p| std::path::Path::new(p).exists());
        for stub in [None, Some("#!/bin/sh\nexit 1\n")] {
            if stub.is_none() && sbin_perl {
                continue;
            }
            if let Some(text) = stub {
                let perl = bin.join("perl");
                std::fs::write(&perl, text).expect("perl");
                std::fs::set_permissions(
                    &perl,
                    std::os::unix::fs::PermissionsExt::from_mode(0o755),
                )
                .expect("mode");
            }
            let mut router = LocalRouter::start(&[("/proc/net/ip_vs", &file)], Some(&bin));
            for _ in 0..4 {
                let (sent, got) = router.poll();
                assert_eq!(sent, "@@lbtop ip_vs", "{stub:?}");
                assert_eq!(got, table);
            }
        }
    }

    fn which(tool: &str) -> Option<std::path::PathBuf> {
        ["/usr/bin", "/bin"]
            .iter()
            .map(|d| std::path::Path::new(d).join(tool))
            .find(|p| p.exists())
    }

    #[test]
    fn requests_are_a_word_a_number_and_part_names() {
        assert_eq!(node_request(7, false), "p 7\n");
        assert_eq!(node_request(7, true), "p 7 dr\n");
        assert_eq!(
            router_request(8, true, &[RouterPart::Stats, RouterPart::Conn]),
            "p 8 stats conn\n"
        );
        assert_eq!(router_request(9, false, &[RouterPart::Conn]), "q 9 conn\n");
        for p in RouterPart::ALL {
            assert_eq!(RouterPart::from_word(p.word()), Some(p));
        }
    }
}
