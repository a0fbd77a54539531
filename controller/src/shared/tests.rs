//! The rules of shared objects, unit by unit (the end-to-end tests go through real
//! sockets and processes; these pin down the state machine).

use super::*;
use protocol::shared::{StoredItem, WatchState};
use protocol::{Header, MsgId, Value};

fn header(n: u64) -> Header {
    Header {
        msg_id: MsgId(format!("req-{n}")),
        msg_type: protocol::shared::SHARED_REQUEST.into(),
        session: "s".into(),
        date: String::new(),
        version: String::new(),
    }
}

fn client(n: u8) -> Peer {
    Peer::Client(vec![b'c', n])
}

fn engine(n: u32) -> Peer {
    Peer::Engine(EngineId(n))
}

fn item(v: impl Into<Value>) -> StoredItem {
    StoredItem::from_value(&v.into())
}

/// A shared-object store with a request counter and a clock.
struct T {
    s: Shared,
    n: u64,
    now: Instant,
}

impl T {
    fn new() -> T {
        T::with(Limits::default())
    }

    fn with(limits: Limits) -> T {
        T {
            s: Shared::new(limits),
            n: 0,
            now: Instant::now(),
        }
    }

    /// Sends a request; returns its id and what was sent.
    fn req(&mut self, peer: Peer, op: SharedOp, items: Vec<StoredItem>) -> (MsgId, Vec<Out>) {
        self.n += 1;
        let h = header(self.n);
        let id = h.msg_id.clone();
        let mut out = Vec::new();
        self.s.request(peer, h, op, items, self.now, &mut out);
        (id, out)
    }

    /// Sends a request that is answered at once; returns the result and values.
    fn ask(
        &mut self,
        peer: Peer,
        op: SharedOp,
        items: Vec<StoredItem>,
    ) -> (SharedResult, Vec<Value>) {
        let (id, out) = self.req(peer, op, items);
        answer_to(&out, &id).expect("answered at once")
    }

    fn advance(&mut self, ms: u64) -> Vec<Out> {
        self.now += Duration::from_millis(ms);
        let mut out = Vec::new();
        self.s.expire(self.now, &mut out);
        out
    }
}

fn answer_to(out: &[Out], id: &MsgId) -> Option<(SharedResult, Vec<Value>)> {
    out.iter().find_map(|o| match o {
        Out::Reply {
            parent,
            result,
            items,
            ..
        } if parent.msg_id == *id => Some((
            result.clone(),
            items.iter().map(|i| i.to_value().unwrap()).collect(),
        )),
        _ => None,
    })
}

fn put(name: &str) -> SharedOp {
    SharedOp::Put {
        name: name.into(),
        front: false,
    }
}

fn get(name: &str, max: u32, timeout_ms: Option<u64>) -> SharedOp {
    SharedOp::Get {
        name: name.into(),
        max,
        timeout_ms,
    }
}

fn acquire(name: &str, limit: u32, timeout_ms: Option<u64>) -> SharedOp {
    SharedOp::Acquire {
        name: name.into(),
        limit,
        timeout_ms,
    }
}

#[test]
fn a_queue_is_fifo_and_a_waiting_get_is_served_by_the_next_put() {
    let mut t = T::new();
    let (r, _) = t.ask(client(1), put("q"), vec![item(1), item(2), item(3)]);
    assert_eq!(r, SharedResult::Int { value: 3 });
    let (_, got) = t.ask(client(2), get("q", 2, None), vec![]);
    assert_eq!(got, vec![Value::Int(1), Value::Int(2)]);
    let (_, got) = t.ask(client(2), get("q", 5, None), vec![]);
    assert_eq!(got, vec![Value::Int(3)]);
    // Empty: two waiters, served in order of arrival.
    let (w1, out) = t.req(engine(0), get("q", 1, None), vec![]);
    assert!(out.is_empty());
    let (w2, out) = t.req(engine(1), get("q", 1, None), vec![]);
    assert!(out.is_empty());
    let (_, out) = t.req(client(1), put("q"), vec![item("a")]);
    assert_eq!(answer_to(&out, &w1).unwrap().1, vec![Value::from("a")]);
    assert!(answer_to(&out, &w2).is_none());
    let (_, out) = t.req(client(1), put("q"), vec![item("b")]);
    assert_eq!(answer_to(&out, &w2).unwrap().1, vec![Value::from("b")]);
    assert_eq!(
        t.ask(client(1), SharedOp::Qsize { name: "q".into() }, vec![])
            .0,
        SharedResult::Int { value: 0 }
    );
    assert_eq!(t.s.bytes(), 0);
}

#[test]
fn binary_items_keep_their_buffers() {
    let mut t = T::new();
    let v = Value::List(vec![Value::bytes(vec![0u8, 255, 7]), Value::Int(1)]);
    t.ask(client(1), put("bin"), vec![StoredItem::from_value(&v)]);
    let (_, got) = t.ask(client(2), get("bin", 1, Some(0)), vec![]);
    assert_eq!(got, vec![v]);
}

#[test]
fn waits_time_out_with_the_result_their_kind_promises() {
    let mut t = T::new();
    assert_eq!(
        t.ask(client(1), get("q", 1, Some(0)), vec![]).0,
        SharedResult::Timeout {}
    );
    let (g, out) = t.req(client(1), get("q", 1, Some(500)), vec![]);
    assert!(out.is_empty());
    t.ask(client(2), acquire("l", 1, None), vec![]);
    let (a, _) = t.req(client(1), acquire("l", 1, Some(200)), vec![]);
    let (w, _) = t.req(
        client(1),
        SharedOp::WaitEvent {
            name: "e".into(),
            timeout_ms: Some(300),
        },
        vec![],
    );
    assert!(t.advance(100).is_empty());
    let out = t.advance(150);
    assert_eq!(
        answer_to(&out, &a).unwrap().0,
        SharedResult::Bool { value: false }
    );
    let out = t.advance(100);
    assert_eq!(
        answer_to(&out, &w).unwrap().0,
        SharedResult::Bool { value: false }
    );
    let out = t.advance(200);
    assert_eq!(answer_to(&out, &g).unwrap().0, SharedResult::Timeout {});
    assert_eq!(t.s.waiting(), 0);
    assert!(t.s.next_deadline().is_none());
    // A put after the timeout stays in the queue.
    t.ask(client(2), put("q"), vec![item(9)]);
    assert_eq!(
        t.ask(client(1), SharedOp::Qsize { name: "q".into() }, vec![])
            .0,
        SharedResult::Int { value: 1 }
    );
}

#[test]
fn a_lock_goes_to_waiters_in_order_and_is_released_when_its_holder_is_gone() {
    let mut t = T::new();
    assert_eq!(
        t.ask(engine(0), acquire("l", 1, None), vec![]).0,
        SharedResult::Bool { value: true }
    );
    let mut waiting = Vec::new();
    for i in 0..2000u32 {
        let (id, out) = t.req(engine(i + 1), acquire("l", 1, None), vec![]);
        assert!(out.is_empty());
        waiting.push((i + 1, id));
    }
    let locked = SharedOp::Locked {
        name: "l".into(),
        limit: 1,
    };
    assert_eq!(
        t.ask(client(1), locked.clone(), vec![]).0,
        SharedResult::Bool { value: true }
    );
    // Someone else cannot release it.
    let (r, _) = t.ask(
        client(1),
        SharedOp::Release {
            name: "l".into(),
            limit: 1,
        },
        vec![],
    );
    assert!(matches!(r, SharedResult::Error { ename, .. } if ename == "RuntimeError"));
    // The holder dies: the first waiter gets it.
    let mut out = Vec::new();
    t.s.peer_gone(&engine(0), &mut out);
    assert_eq!(
        answer_to(&out, &waiting[0].1).unwrap().0,
        SharedResult::Bool { value: true }
    );
    assert_eq!(out.len(), 1);
    // Then each release hands it on, in order.
    for w in waiting.windows(2) {
        let (id, out) = t.req(
            engine(w[0].0),
            SharedOp::Release {
                name: "l".into(),
                limit: 1,
            },
            vec![],
        );
        assert_eq!(answer_to(&out, &id).unwrap().0, SharedResult::Done {});
        assert_eq!(
            answer_to(&out, &w[1].1).unwrap().0,
            SharedResult::Bool { value: true }
        );
    }
    t.ask(
        engine(2000),
        SharedOp::Release {
            name: "l".into(),
            limit: 1,
        },
        vec![],
    );
    assert_eq!(
        t.ask(client(1), locked, vec![]).0,
        SharedResult::Bool { value: false }
    );
}

#[test]
fn a_semaphore_has_its_slots_and_keeps_its_size() {
    let mut t = T::new();
    for c in 0..2 {
        assert_eq!(
            t.ask(client(c), acquire("s", 2, Some(0)), vec![]).0,
            SharedResult::Bool { value: true }
        );
    }
    assert_eq!(
        t.ask(client(3), acquire("s", 2, Some(0)), vec![]).0,
        SharedResult::Bool { value: false }
    );
    let (r, _) = t.ask(client(3), acquire("s", 3, Some(0)), vec![]);
    assert!(matches!(r, SharedResult::Error { message, .. } if message.contains("2 slots")));
}

#[test]
fn items_an_engine_took_go_back_to_the_front_when_it_dies_before_its_task_ends() {
    let mut t = T::new();
    t.ask(client(1), put("jobs"), (0..6).map(item).collect());
    t.ask(engine(0), get("jobs", 2, None), vec![]); // 0, 1: its task finishes
    t.s.task_ended(EngineId(0));
    t.ask(engine(0), get("jobs", 2, None), vec![]); // 2, 3: its task never finishes
    t.ask(engine(1), get("jobs", 1, None), vec![]); // 4
    let mut out = Vec::new();
    t.s.peer_gone(&engine(0), &mut out);
    let (_, got) = t.ask(client(2), get("jobs", 10, None), vec![]);
    assert_eq!(got, vec![Value::Int(2), Value::Int(3), Value::Int(5)]);
    // A waiter gets them at once.
    t.ask(client(1), put("jobs"), vec![item(6)]);
    t.ask(engine(3), get("jobs", 1, None), vec![]);
    let (w, _) = t.req(engine(4), get("jobs", 1, None), vec![]);
    let mut out = Vec::new();
    t.s.peer_gone(&engine(3), &mut out);
    assert!(answer_to(&out, &w).is_some());
    // Items a client took are its own.
    t.ask(client(1), put("jobs"), vec![item(7)]);
    t.ask(client(2), get("jobs", 1, None), vec![]);
    let mut out = Vec::new();
    t.s.peer_gone(&client(2), &mut out);
    assert_eq!(
        t.ask(
            client(1),
            SharedOp::Qsize {
                name: "jobs".into()
            },
            vec![]
        )
        .0,
        SharedResult::Int { value: 0 }
    );
}

#[test]
fn events_wake_their_waiters_and_push_changes_to_watching_engines() {
    let mut t = T::new();
    let (w, out) = t.req(
        client(1),
        SharedOp::WaitEvent {
            name: "stop".into(),
            timeout_ms: None,
        },
        vec![],
    );
    assert!(out.is_empty());
    let (r, _) = t.ask(
        engine(2),
        SharedOp::Watch {
            target: Watched::Event("stop".into()),
        },
        vec![],
    );
    let SharedResult::Watching(c) = r else {
        panic!("{r:?}")
    };
    assert_eq!(c.state, WatchState::Event { set: false });
    let (_, out) = t.req(
        engine(3),
        SharedOp::SetEvent {
            name: "stop".into(),
        },
        vec![],
    );
    assert_eq!(
        answer_to(&out, &w).unwrap().0,
        SharedResult::Bool { value: true }
    );
    let pushed: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            Out::Push { engine, change } => Some((*engine, change.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(pushed.len(), 1);
    assert_eq!(pushed[0].0, EngineId(2));
    assert_eq!(pushed[0].1.state, WatchState::Event { set: true });
    assert!(pushed[0].1.version > c.version);
    // Setting it again changes nothing and pushes nothing.
    let (_, out) = t.req(
        engine(3),
        SharedOp::SetEvent {
            name: "stop".into(),
        },
        vec![],
    );
    assert_eq!(out.len(), 1);
    assert_eq!(
        t.ask(
            client(1),
            SharedOp::IsSet {
                name: "stop".into()
            },
            vec![]
        )
        .0,
        SharedResult::Bool { value: true }
    );
    // A client cannot watch.
    let (r, _) = t.ask(
        client(1),
        SharedOp::Watch {
            target: Watched::Event("stop".into()),
        },
        vec![],
    );
    assert!(matches!(r, SharedResult::Error { .. }));
}

#[test]
fn variables_wait_for_a_value_and_push_it_to_watchers() {
    let mut t = T::new();
    let (g, out) = t.req(
        engine(1),
        SharedOp::GetVar {
            name: "found".into(),
            timeout_ms: None,
        },
        vec![],
    );
    assert!(out.is_empty());
    t.ask(
        engine(2),
        SharedOp::Watch {
            target: Watched::Variable("found".into()),
        },
        vec![],
    );
    let (_, out) = t.req(
        engine(0),
        SharedOp::SetVar {
            name: "found".into(),
        },
        vec![item(17)],
    );
    assert_eq!(answer_to(&out, &g).unwrap().1, vec![Value::Int(17)]);
    let change = out.iter().find_map(|o| match o {
        Out::Push { change, .. } => Some(change.clone()),
        _ => None,
    });
    assert_eq!(
        change.unwrap().state,
        WatchState::Variable {
            value: Some(serde_json::json!(17)),
            fetch: false
        }
    );
    let (_, out) = t.req(
        engine(0),
        SharedOp::SetVar {
            name: "found".into(),
        },
        vec![item(Value::bytes(vec![1u8]))],
    );
    let change = out.iter().find_map(|o| match o {
        Out::Push { change, .. } => Some(change.clone()),
        _ => None,
    });
    assert_eq!(
        change.unwrap().state,
        WatchState::Variable {
            value: None,
            fetch: true
        }
    );
    t.ask(
        engine(0),
        SharedOp::DeleteVar {
            name: "found".into(),
        },
        vec![],
    );
    assert_eq!(
        t.ask(
            engine(1),
            SharedOp::GetVar {
                name: "found".into(),
                timeout_ms: Some(0)
            },
            vec![]
        )
        .0,
        SharedResult::Timeout {}
    );
    let (r, _) = t.ask(
        engine(0),
        SharedOp::SetVar { name: "x".into() },
        vec![item(1), item(2)],
    );
    assert!(matches!(r, SharedResult::Error { .. }));
}

#[test]
fn counters_add_atomically_and_refuse_to_overflow() {
    let mut t = T::new();
    for i in 1..=100 {
        assert_eq!(
            t.ask(
                engine(i % 4),
                SharedOp::Add {
                    name: "hits".into(),
                    n: 1
                },
                vec![]
            )
            .0,
            SharedResult::Int { value: i as i64 }
        );
    }
    assert_eq!(
        t.ask(
            client(1),
            SharedOp::Count {
                name: "hits".into()
            },
            vec![]
        )
        .0,
        SharedResult::Int { value: 100 }
    );
    let (r, _) = t.ask(
        client(1),
        SharedOp::Add {
            name: "hits".into(),
            n: i64::MAX,
        },
        vec![],
    );
    assert!(matches!(r, SharedResult::Error { ename, .. } if ename == "OverflowError"));
    assert_eq!(
        t.ask(
            client(1),
            SharedOp::Count {
                name: "hits".into()
            },
            vec![]
        )
        .0,
        SharedResult::Int { value: 100 }
    );
}

#[test]
fn subscribers_get_what_was_published_after_they_subscribed_and_overflow_drops_the_oldest() {
    let mut t = T::with(Limits {
        subscriber_buffer: 3,
        ..Limits::default()
    });
    let publish = |topic: &str| SharedOp::Publish {
        topic: topic.into(),
    };
    assert_eq!(
        t.ask(client(1), publish("primes"), vec![item(1)]).0,
        SharedResult::Int { value: 0 }
    );
    let SharedResult::Subscribed { sub } = t
        .ask(
            client(2),
            SharedOp::Subscribe {
                topic: "primes".into(),
            },
            vec![],
        )
        .0
    else {
        panic!()
    };
    let SharedResult::Subscribed { sub: other } = t
        .ask(
            engine(0),
            SharedOp::Subscribe {
                topic: "primes".into(),
            },
            vec![],
        )
        .0
    else {
        panic!()
    };
    let next = |sub, max| SharedOp::Next {
        sub,
        max,
        timeout_ms: None,
    };
    let (w, out) = t.req(engine(0), next(other, 10), vec![]);
    assert!(out.is_empty());
    let (_, out) = t.req(client(1), publish("primes"), vec![item(2), item(3)]);
    assert_eq!(
        answer_to(&out, &w).unwrap().1,
        vec![Value::Int(2), Value::Int(3)]
    );
    t.ask(client(1), publish("primes"), vec![item(5), item(7)]);
    // Subscriber 1 never read: 4 messages into a buffer of 3 drop the oldest.
    let (r, got) = t.ask(client(2), next(sub, 10), vec![]);
    assert_eq!(r, SharedResult::Items { dropped: 1 });
    assert_eq!(got, vec![Value::Int(3), Value::Int(5), Value::Int(7)]);
    assert_eq!(t.s.dropped_messages, 1);
    let SharedResult::Objects { objects } = t.ask(client(1), SharedOp::List {}, vec![]).0 else {
        panic!()
    };
    let topic = objects.iter().find(|o| o.kind == "topic").unwrap();
    assert_eq!((topic.limit, topic.dropped), (2, 1));
    // Someone else's subscription is not yours.
    let (r, _) = t.ask(client(1), next(sub, 1), vec![]);
    assert!(matches!(r, SharedResult::Error { .. }));
    t.ask(client(2), SharedOp::Unsubscribe { sub }, vec![]);
    let mut out = Vec::new();
    t.s.peer_gone(&engine(0), &mut out);
    assert_eq!(
        t.ask(client(1), publish("primes"), vec![item(11)]).0,
        SharedResult::Int { value: 0 }
    );
    assert_eq!(t.s.bytes(), 0);
}

#[test]
fn a_cancelled_wait_is_answered_cancelled_and_takes_nothing() {
    let mut t = T::new();
    let (g, _) = t.req(client(1), get("q", 1, None), vec![]);
    let (c, out) = t.req(client(1), SharedOp::Cancel { request: g.clone() }, vec![]);
    assert_eq!(answer_to(&out, &g).unwrap().0, SharedResult::Cancelled {});
    assert_eq!(answer_to(&out, &c).unwrap().0, SharedResult::Done {});
    let (_, out) = t.req(client(2), put("q"), vec![item(1)]);
    assert_eq!(out.len(), 1);
    // Another peer cannot cancel it.
    let (g, _) = t.req(client(1), get("other", 1, None), vec![]);
    let (_, out) = t.req(client(2), SharedOp::Cancel { request: g.clone() }, vec![]);
    assert!(answer_to(&out, &g).is_none());
}

#[test]
fn names_and_sizes_are_bounded_with_clear_errors() {
    let mut t = T::with(Limits {
        max_queue_items: 2,
        ..Limits::default()
    });
    let long = "x".repeat(MAX_NAME_BYTES + 1);
    let (r, _) = t.ask(client(1), put(&long), vec![item(1)]);
    assert!(
        matches!(&r, SharedResult::Error { ename, message } if ename == "ValueError" && message.contains("256")),
        "{r:?}"
    );
    let (r, _) = t.ask(client(1), put("q"), vec![item(1), item(2), item(3)]);
    assert!(
        matches!(&r, SharedResult::Error { ename, .. } if ename == "QueueFull"),
        "{r:?}"
    );
    let (r, _) = t.ask(client(1), get("q", 0, None), vec![]);
    assert!(matches!(&r, SharedResult::Error { ename, .. } if ename == "ValueError"));
    let mut t = T::with(Limits {
        max_bytes: 100,
        ..Limits::default()
    });
    let (r, _) = t.ask(client(1), put("q"), vec![item("y".repeat(200))]);
    assert!(
        matches!(&r, SharedResult::Error { ename, .. } if ename == "QueueFull"),
        "{r:?}"
    );
}

#[test]
fn the_list_shows_every_object_with_its_size_and_waiters() {
    let mut t = T::new();
    t.ask(client(1), put("jobs"), vec![item(1), item(2)]);
    t.ask(
        client(1),
        SharedOp::Add {
            name: "n".into(),
            n: 5,
        },
        vec![],
    );
    t.ask(client(1), acquire("l", 1, None), vec![]);
    t.req(client(2), acquire("l", 1, None), vec![]);
    t.ask(client(1), SharedOp::SetEvent { name: "e".into() }, vec![]);
    let SharedResult::Objects { objects } = t.ask(client(1), SharedOp::List {}, vec![]).0 else {
        panic!()
    };
    let find = |kind: &str, name: &str| {
        objects
            .iter()
            .find(|o| o.kind == kind && o.name == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(find("queue", "jobs").size, 2);
    assert!(find("queue", "jobs").bytes > 0);
    assert_eq!(find("counter", "n").size, 5);
    assert_eq!(find("lock", "l").waiters, 1);
    assert_eq!(find("event", "e").size, 1);
    // A client that holds something is tracked until it is gone.
    assert!(t.s.clients_holding().contains(&vec![b'c', 1]));
    let mut out = Vec::new();
    t.s.peer_gone(&client(1), &mut out);
    assert!(!t.s.clients_holding().contains(&vec![b'c', 1]));
}
