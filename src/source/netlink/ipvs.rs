//! Protocol constants of the IPVS generic-netlink family, written from the kernel's
//! `include/uapi/linux/ip_vs.h` (its enums count from 0 in the order given there). The reader
//! uses the GET commands; the rest are here so the numbering can be checked against the header,
//! and for the control side (drain, reweight).

/// `IPVS_GENL_NAME`, `IPVS_GENL_VERSION`.
pub const GENL_NAME: &str = "IPVS";
pub const GENL_VERSION: u8 = 0x1;

// enum { IPVS_CMD_UNSPEC = 0, IPVS_CMD_NEW_SERVICE, ... }
pub const CMD_NEW_SERVICE: u8 = 1;
pub const CMD_SET_SERVICE: u8 = 2;
pub const CMD_DEL_SERVICE: u8 = 3;
pub const CMD_GET_SERVICE: u8 = 4;
pub const CMD_NEW_DEST: u8 = 5;
pub const CMD_SET_DEST: u8 = 6;
pub const CMD_DEL_DEST: u8 = 7;
pub const CMD_GET_DEST: u8 = 8;
pub const CMD_NEW_DAEMON: u8 = 9;
pub const CMD_DEL_DAEMON: u8 = 10;
pub const CMD_GET_DAEMON: u8 = 11;
pub const CMD_SET_CONFIG: u8 = 12;
pub const CMD_GET_CONFIG: u8 = 13;
pub const CMD_SET_INFO: u8 = 14;
pub const CMD_GET_INFO: u8 = 15;
pub const CMD_ZERO: u8 = 16;
pub const CMD_FLUSH: u8 = 17;

// enum { IPVS_CMD_ATTR_UNSPEC = 0, ... }: first level of a message.
pub const CMD_ATTR_SERVICE: u16 = 1;
pub const CMD_ATTR_DEST: u16 = 2;
pub const CMD_ATTR_DAEMON: u16 = 3;
pub const CMD_ATTR_TIMEOUT_TCP: u16 = 4;
pub const CMD_ATTR_TIMEOUT_TCP_FIN: u16 = 5;
pub const CMD_ATTR_TIMEOUT_UDP: u16 = 6;

// enum { IPVS_SVC_ATTR_UNSPEC = 0, ... }: inside IPVS_CMD_ATTR_SERVICE.
pub const SVC_ATTR_AF: u16 = 1;
pub const SVC_ATTR_PROTOCOL: u16 = 2;
pub const SVC_ATTR_ADDR: u16 = 3;
pub const SVC_ATTR_PORT: u16 = 4;
pub const SVC_ATTR_FWMARK: u16 = 5;
pub const SVC_ATTR_SCHED_NAME: u16 = 6;
pub const SVC_ATTR_FLAGS: u16 = 7;
pub const SVC_ATTR_TIMEOUT: u16 = 8;
pub const SVC_ATTR_NETMASK: u16 = 9;
pub const SVC_ATTR_STATS: u16 = 10;
pub const SVC_ATTR_PE_NAME: u16 = 11;
pub const SVC_ATTR_STATS64: u16 = 12;

// enum { IPVS_DEST_ATTR_UNSPEC = 0, ... }: inside IPVS_CMD_ATTR_DEST.
pub const DEST_ATTR_ADDR: u16 = 1;
pub const DEST_ATTR_PORT: u16 = 2;
pub const DEST_ATTR_FWD_METHOD: u16 = 3;
pub const DEST_ATTR_WEIGHT: u16 = 4;
pub const DEST_ATTR_U_THRESH: u16 = 5;
pub const DEST_ATTR_L_THRESH: u16 = 6;
pub const DEST_ATTR_ACTIVE_CONNS: u16 = 7;
pub const DEST_ATTR_INACT_CONNS: u16 = 8;
pub const DEST_ATTR_PERSIST_CONNS: u16 = 9;
pub const DEST_ATTR_STATS: u16 = 10;
pub const DEST_ATTR_ADDR_FAMILY: u16 = 11;
pub const DEST_ATTR_STATS64: u16 = 12;
pub const DEST_ATTR_TUN_TYPE: u16 = 13;
pub const DEST_ATTR_TUN_PORT: u16 = 14;
pub const DEST_ATTR_TUN_FLAGS: u16 = 15;

// enum { IPVS_STATS_ATTR_UNSPEC = 0, ... }: inside the STATS and STATS64 nests.
pub const STATS_ATTR_CONNS: u16 = 1;
pub const STATS_ATTR_INPKTS: u16 = 2;
pub const STATS_ATTR_OUTPKTS: u16 = 3;
pub const STATS_ATTR_INBYTES: u16 = 4;
pub const STATS_ATTR_OUTBYTES: u16 = 5;
pub const STATS_ATTR_CPS: u16 = 6;
pub const STATS_ATTR_INPPS: u16 = 7;
pub const STATS_ATTR_OUTPPS: u16 = 8;
pub const STATS_ATTR_INBPS: u16 = 9;
pub const STATS_ATTR_OUTBPS: u16 = 10;
pub const STATS_ATTR_PAD: u16 = 11;

// enum { IPVS_INFO_ATTR_UNSPEC = 0, ... }: the GET_INFO reply.
pub const INFO_ATTR_VERSION: u16 = 1;
pub const INFO_ATTR_CONN_TAB_SIZE: u16 = 2;

// Virtual service flags (IP_VS_SVC_F_*).
pub const SVC_F_PERSISTENT: u32 = 0x0001;
pub const SVC_F_HASHED: u32 = 0x0002;
pub const SVC_F_ONEPACKET: u32 = 0x0004;
pub const SVC_F_SCHED1: u32 = 0x0008;
pub const SVC_F_SCHED2: u32 = 0x0010;
pub const SVC_F_SCHED3: u32 = 0x0020;

/// `IP_VS_CONN_F_FWD_MASK`: the forwarding method in a real server's connection flags.
pub const CONN_F_FWD_MASK: u32 = 0x0007;

/// `union nf_inet_addr`, as IPVS_SVC_ATTR_ADDR and IPVS_DEST_ATTR_ADDR carry it.
pub const INET_ADDR_LEN: usize = 16;
