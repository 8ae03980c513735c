//! Protocol constants of the IPVS generic-netlink family, written from the kernel's
//! `include/uapi/linux/ip_vs.h` (its enums count from 0 in the order given there): only the
//! values lbtop uses — the GET commands for the reader, SET_DEST for the control side (drain,
//! reweight) — so gaps in a list are values nothing here sends or reads.

/// `IPVS_GENL_NAME`, `IPVS_GENL_VERSION`.
pub(crate) const GENL_NAME: &str = "IPVS";
pub(crate) const GENL_VERSION: u8 = 0x1;

// enum { IPVS_CMD_UNSPEC = 0, IPVS_CMD_NEW_SERVICE, ... }
pub(crate) const CMD_GET_SERVICE: u8 = 4;
pub(crate) const CMD_SET_DEST: u8 = 6;
pub(crate) const CMD_GET_DEST: u8 = 8;
pub(crate) const CMD_GET_DAEMON: u8 = 11;
pub(crate) const CMD_GET_CONFIG: u8 = 13;
pub(crate) const CMD_GET_INFO: u8 = 15;

// enum { IPVS_CMD_ATTR_UNSPEC = 0, ... }: first level of a message.
pub(crate) const CMD_ATTR_SERVICE: u16 = 1;
pub(crate) const CMD_ATTR_DEST: u16 = 2;
pub(crate) const CMD_ATTR_DAEMON: u16 = 3;
pub(crate) const CMD_ATTR_TIMEOUT_TCP: u16 = 4;
pub(crate) const CMD_ATTR_TIMEOUT_TCP_FIN: u16 = 5;
pub(crate) const CMD_ATTR_TIMEOUT_UDP: u16 = 6;

// enum { IPVS_SVC_ATTR_UNSPEC = 0, ... }: inside IPVS_CMD_ATTR_SERVICE.
pub(crate) const SVC_ATTR_AF: u16 = 1;
pub(crate) const SVC_ATTR_PROTOCOL: u16 = 2;
pub(crate) const SVC_ATTR_ADDR: u16 = 3;
pub(crate) const SVC_ATTR_PORT: u16 = 4;
pub(crate) const SVC_ATTR_FWMARK: u16 = 5;
pub(crate) const SVC_ATTR_SCHED_NAME: u16 = 6;
pub(crate) const SVC_ATTR_FLAGS: u16 = 7;
pub(crate) const SVC_ATTR_TIMEOUT: u16 = 8;
pub(crate) const SVC_ATTR_NETMASK: u16 = 9;
pub(crate) const SVC_ATTR_STATS: u16 = 10;
pub(crate) const SVC_ATTR_PE_NAME: u16 = 11;
pub(crate) const SVC_ATTR_STATS64: u16 = 12;

// enum { IPVS_DEST_ATTR_UNSPEC = 0, ... }: inside IPVS_CMD_ATTR_DEST.
pub(crate) const DEST_ATTR_ADDR: u16 = 1;
pub(crate) const DEST_ATTR_PORT: u16 = 2;
pub(crate) const DEST_ATTR_FWD_METHOD: u16 = 3;
pub(crate) const DEST_ATTR_WEIGHT: u16 = 4;
pub(crate) const DEST_ATTR_U_THRESH: u16 = 5;
pub(crate) const DEST_ATTR_L_THRESH: u16 = 6;
pub(crate) const DEST_ATTR_ACTIVE_CONNS: u16 = 7;
pub(crate) const DEST_ATTR_INACT_CONNS: u16 = 8;
pub(crate) const DEST_ATTR_PERSIST_CONNS: u16 = 9;
pub(crate) const DEST_ATTR_STATS: u16 = 10;
pub(crate) const DEST_ATTR_ADDR_FAMILY: u16 = 11;
pub(crate) const DEST_ATTR_STATS64: u16 = 12;
pub(crate) const DEST_ATTR_TUN_TYPE: u16 = 13;
pub(crate) const DEST_ATTR_TUN_PORT: u16 = 14;
pub(crate) const DEST_ATTR_TUN_FLAGS: u16 = 15;

// enum { IPVS_DAEMON_ATTR_UNSPEC = 0, ... }: inside IPVS_CMD_ATTR_DAEMON; its state's values are
// the IP_VS_STATE_* bits.
pub(crate) const DAEMON_ATTR_STATE: u16 = 1;
pub(crate) const DAEMON_ATTR_MCAST_IFN: u16 = 2;
pub(crate) const DAEMON_ATTR_SYNC_ID: u16 = 3;
pub(crate) const STATE_MASTER: u32 = 0x0001;
pub(crate) const STATE_BACKUP: u32 = 0x0002;

// enum { IPVS_STATS_ATTR_UNSPEC = 0, ... }: inside the STATS and STATS64 nests.
pub(crate) const STATS_ATTR_CONNS: u16 = 1;
pub(crate) const STATS_ATTR_INBYTES: u16 = 4;
pub(crate) const STATS_ATTR_OUTBYTES: u16 = 5;
pub(crate) const STATS_ATTR_OUTBPS: u16 = 10;

// enum { IPVS_INFO_ATTR_UNSPEC = 0, ... }: the GET_INFO reply.
pub(crate) const INFO_ATTR_VERSION: u16 = 1;
pub(crate) const INFO_ATTR_CONN_TAB_SIZE: u16 = 2;

// Virtual service flags (IP_VS_SVC_F_*).
pub(crate) const SVC_F_PERSISTENT: u32 = 0x0001;
pub(crate) const SVC_F_ONEPACKET: u32 = 0x0004;

/// `IP_VS_CONN_F_FWD_MASK`: the forwarding method in a real server's connection flags.
pub(crate) const CONN_F_FWD_MASK: u32 = 0x0007;

/// `union nf_inet_addr`, as IPVS_SVC_ATTR_ADDR and IPVS_DEST_ATTR_ADDR carry it.
pub(crate) const INET_ADDR_LEN: usize = 16;

/// Kernel values only the tests use: a command to add a real server, the stats padding attribute
/// and two service flags.
#[cfg(test)]
pub(crate) const CMD_NEW_DEST: u8 = 5;
#[cfg(test)]
pub(crate) const STATS_ATTR_PAD: u16 = 11;
#[cfg(test)]
pub(crate) const SVC_F_HASHED: u32 = 0x0002;
#[cfg(test)]
pub(crate) const SVC_F_SCHED1: u32 = 0x0008;
