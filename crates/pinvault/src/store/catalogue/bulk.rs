//! Statements that write many rows at once (a bulk import).

use crate::store::db::Sql;

/// `INSERT INTO {into} VALUES (…), (…), …`: `rows` rows of `columns`
/// parameters each, for writing many rows in one statement (a bulk import).
/// `into` is a table and its column list, `"cards (id, …)"`. Each shape is
/// made once and kept for the life of the process (a few dozen at most).
pub(super) fn insert_rows(into: &'static str, columns: usize, rows: usize) -> Sql {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    type Shapes = HashMap<(&'static str, usize, usize), Sql>;
    static MADE: OnceLock<Mutex<Shapes>> = OnceLock::new();
    let made = MADE.get_or_init(Default::default);
    let mut made = made.lock().unwrap_or_else(|p| p.into_inner());
    *made.entry((into, columns, rows)).or_insert_with(|| {
        let text = |mark: char| {
            let mut out = format!("INSERT INTO {into} VALUES ");
            for r in 0..rows {
                out.push_str(if r == 0 { "(" } else { ", (" });
                for c in 0..columns {
                    if c > 0 {
                        out.push_str(", ");
                    }
                    out.push(mark);
                    out.push_str(&(r * columns + c + 1).to_string());
                }
                out.push(')');
            }
            &*Box::leak(out.into_boxed_str())
        };
        Sql {
            pg: text('$'),
            lite: text('?'),
        }
    })
}
