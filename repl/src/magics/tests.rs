use super::*;
use crate::editor;

/// Every entry is reached by dispatch, listed by `%lsmagic` and offered by completion, so
/// the table cannot drift from what the REPL does.
#[test]
fn every_magic_dispatches_is_listed_and_completes() {
    let listing = listing();
    for m in MAGICS {
        let spelled = m.spelled();
        let text = match m.kind {
            Kind::Line => format!("{spelled} 1 + 1"),
            Kind::Cell => format!("{spelled}\nx = 1\n"),
        };
        match parse(&text, "=In[1]") {
            Ok((found, _)) => assert!(std::ptr::eq(found, m), "{spelled} dispatches elsewhere"),
            Err(_) => panic!("{spelled} does not dispatch"),
        }
        assert!(
            listing
                .lines()
                .any(|l| l.trim_start().starts_with(m.usage) && l.ends_with(m.help)),
            "%lsmagic does not list {spelled}: {listing}"
        );
        assert!(
            m.usage.starts_with(&spelled),
            "{spelled}: usage {}",
            m.usage
        );
        let typed = &spelled[..spelled.len() - 1];
        let (start, offered) = editor::complete_magic(typed).expect("a magic is completed");
        assert_eq!(start, 0);
        assert!(
            offered.iter().any(|p| p.replacement == spelled),
            "completion of {typed} does not offer {spelled}"
        );
    }
}

#[test]
fn names_are_unique_per_kind() {
    for (i, a) in MAGICS.iter().enumerate() {
        for b in &MAGICS[i + 1..] {
            assert!(
                !(a.kind == b.kind && a.name == b.name),
                "{} is declared twice",
                a.spelled()
            );
        }
    }
}

fn failure(text: &str) -> (String, Option<i32>) {
    match parse(text, "=In[1]") {
        Err(CellError::Failed(msg, code)) => (msg, code),
        _ => panic!("{text} should not dispatch"),
    }
}

#[test]
fn unknown_magics_are_usage_errors() {
    assert_eq!(
        failure("%nope x"),
        (
            "unknown magic %nope; %lsmagic lists the magics".into(),
            Some(2)
        )
    );
    assert_eq!(
        failure("%%who\nx"),
        (
            "unknown cell magic %%who; %lsmagic lists the magics".into(),
            Some(2)
        )
    );
    assert_eq!(failure("%%\nx"), ("empty cell magic".into(), Some(2)));
}

#[test]
fn calls_carry_their_arguments_and_body() {
    let Ok((m, call)) = parse("%%px --targets 0,2\ny = 5\nprint(y)\n", "=In[3]") else {
        panic!("%%px dispatches")
    };
    assert_eq!(m.spelled(), "%%px");
    assert_eq!(call.arg, "--targets 0,2");
    assert_eq!(call.body, "y = 5\nprint(y)\n");
    assert_eq!(call.chunk, "=In[3]");
    let Ok((m, call)) = parse("%time  f(1)\n", "=In[4]") else {
        panic!("%time dispatches")
    };
    assert_eq!(m.name, "time");
    assert_eq!(call.arg, "f(1)");
    assert!(takes_code("px") && takes_code("time") && takes_code("timeit"));
    assert!(!takes_code("who") && !takes_code("nope"));
}
