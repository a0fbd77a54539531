//! Unit tests of the shared view helpers.

use super::*;

#[test]
fn partition_is_contiguous_and_balanced() {
    let items: Vec<Value> = (0..10).map(Value::Int).collect();
    let parts = partition(items.clone(), 4);
    let sizes: Vec<usize> = parts.iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![3, 3, 2, 2]);
    assert_eq!(parts.concat(), items);
    assert_eq!(
        partition(vec![Value::Int(1)], 3)
            .iter()
            .map(Vec::len)
            .collect::<Vec<_>>(),
        vec![1, 0, 0]
    );
}

#[test]
fn targets_parse_from_the_command_line() {
    assert_eq!("all".parse::<Targets>().unwrap(), Targets::All);
    assert_eq!(
        "0, 2".parse::<Targets>().unwrap(),
        Targets::Many(vec![EngineId(0), EngineId(2)])
    );
    assert!("0,x"
        .parse::<Targets>()
        .unwrap_err()
        .contains("'x' is not an engine id"));
}
