//! `router.sync` and `router.pair` of the snapshot: the sync daemons of the router shown, and the
//! HA pair's two directors side by side (docs/json.md).

use crate::app::{PairEntry, State, SyncHealth};
use crate::model::dr::service_vips;
use crate::model::pair::Master;
use crate::model::sample::{HostStatus, SyncDaemon};

use super::Json;

/// The sync daemons of a director: `[{"role","mcast_ifn","syncid"}]`, or null where not read.
pub(super) fn sync(w: &mut Json<'_>, daemons: Option<&Vec<SyncDaemon>>) {
    let Some(daemons) = daemons else {
        w.null();
        return;
    };
    w.raw(b"[");
    for (i, d) in daemons.iter().enumerate() {
        if i > 0 {
            w.raw(b",");
        }
        w.raw(b"{\"role\":");
        w.string(d.role.as_str());
        w.raw(b",\"mcast_ifn\":");
        w.string(&d.mcast_ifn);
        w.raw(b",\"syncid\":");
        w.uint(u64::from(d.syncid));
        w.raw(b"}");
    }
    w.raw(b"]");
}

/// `router.pair`: null unless two directors are watched.
pub(super) fn pair(w: &mut Json<'_>, state: &State) {
    let Some(p) = state.pair() else {
        w.null();
        return;
    };
    w.raw(b"{\"master\":");
    w.opt_string(p.roles().map(|(m, _)| p.names[m].as_str()));
    w.raw(b",\"state\":");
    w.string(match p.master {
        Master::One(_) => "master",
        Master::Both => "both",
        Master::Neither => "neither",
        Master::Unknown => "unknown",
    });
    let health = p.sync();
    w.raw(b",\"sync\":");
    w.string(match &health {
        SyncHealth::Ok => "ok",
        SyncHealth::Wrong(_) => "wrong",
        SyncHealth::Unknown => "unknown",
    });
    w.raw(b",\"sync_problem\":");
    w.opt_string(match &health {
        SyncHealth::Wrong(why) => Some(why.as_str()),
        _ => None,
    });
    w.raw(b",\"directors\":[");
    for i in 0..2 {
        if i > 0 {
            w.raw(b",");
        }
        director(w, p, i);
    }
    w.raw(b"],\"drift\":[");
    let names = [p.names[0].as_str(), p.names[1].as_str()];
    for (i, d) in p.drift.iter().enumerate() {
        if i > 0 {
            w.raw(b",");
        }
        w.string(&d.describe(names));
    }
    w.raw(b"]}");
}

fn director(w: &mut Json<'_>, p: &PairEntry, i: usize) {
    let side = &p.sides[i];
    let cur = side.cur.as_ref();
    w.raw(b"{\"host\":");
    w.string(&p.names[i]);
    w.raw(b",\"role\":");
    w.opt_string(
        p.roles()
            .map(|(m, _)| if m == i { "master" } else { "backup" }),
    );
    w.raw(b",\"host_status\":");
    w.string(side.status.as_str());
    w.raw(b",\"error\":");
    w.opt_string(
        side.message
            .as_deref()
            .filter(|_| side.status != HostStatus::Ok),
    );
    w.raw(b",\"holds_vips\":");
    match cur.and_then(|c| Some((c, c.addrs.as_ref()?))) {
        Some((c, addrs)) => {
            let vips = service_vips(c);
            let held = vips.iter().filter(|v| addrs.holds(**v)).count();
            if held > 0 && held == vips.len() {
                w.raw(b"true");
            } else if held == 0 {
                w.raw(b"false");
            } else {
                w.raw(b"null");
            }
        }
        None => w.null(),
    }
    w.raw(b",\"services\":");
    match cur {
        Some(c) => w.uint(c.services.len() as u64),
        None => w.null(),
    }
    w.raw(b",\"connections\":");
    match p.connections()[i] {
        Some((active, inactive)) => {
            w.raw(b"{\"active\":");
            w.uint(active);
            w.raw(b",\"inactive\":");
            w.uint(inactive);
            w.raw(b"}");
        }
        None => w.null(),
    }
    w.raw(b",\"owners\":");
    match cur.and_then(|c| c.owners.as_ref()) {
        Some(owners) => {
            w.raw(b"[");
            for (i, o) in owners.iter().enumerate() {
                if i > 0 {
                    w.raw(b",");
                }
                w.string(o);
            }
            w.raw(b"]");
        }
        None => w.null(),
    }
    w.raw(b",\"sync\":");
    sync(w, cur.and_then(|c| c.sync.as_ref()));
    w.raw(b"}");
}
