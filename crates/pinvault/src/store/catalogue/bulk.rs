//! Statements that write many rows at once (a bulk import).

use crate::store::db::{Arg, Db, DbResult, Sql};

/// Rows a bulk statement writes at most.
pub const ROWS_A_STATEMENT: usize = 100;

/// Inserts a row for each of `items` (`values` gives its `N` parameters) into
/// `into`, as [`insert_rows`]: [`ROWS_A_STATEMENT`] rows a statement.
pub(super) async fn insert_all<'r, T, const N: usize>(
    db: &mut dyn Db,
    into: &'static str,
    items: &'r [T],
    values: impl Fn(&'r T) -> [Arg<'r>; N],
) -> DbResult<()> {
    for chunk in items.chunks(ROWS_A_STATEMENT) {
        let args: Vec<Arg<'r>> = chunk.iter().flat_map(&values).collect();
        db.exec(&insert_rows(into, N, chunk.len()), &args).await?;
    }
    Ok(())
}

/// `INSERT INTO {into} VALUES (…), (…), …`: `rows` rows of `columns`
/// parameters each, for writing many rows in one statement (a bulk import).
/// `into` is a table and its column list, `"cards (id, …)"`.
pub(super) fn insert_rows(into: &'static str, columns: usize, rows: usize) -> Sql {
    shape(into, columns, rows, |mark| {
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
        out
    })
}

/// `{head} IN ($1, …, $n)`: a statement over `n` given values, as
/// `DELETE FROM audit_queue WHERE id` for the rows just sealed.
pub(super) fn in_list(head: &'static str, n: usize) -> Sql {
    shape(head, 1, n, |mark| {
        let marks: Vec<String> = (1..=n).map(|i| format!("{mark}{i}")).collect();
        format!("{head} IN ({})", marks.join(", "))
    })
}

/// `WITH v (…) AS (VALUES (…), …) {update}`: one statement that updates many
/// rows from `rows` rows of values. `columns` are the names `update` reads
/// them by (`v.name`) and the types they are read as, in PostgreSQL and in
/// SQLite: a parameter in a VALUES list has no type of its own to compare by.
pub(super) fn update_from_values(
    update: &'static str,
    columns: &'static [(&'static str, &'static str, &'static str)],
    rows: usize,
) -> Sql {
    shape(update, columns.len(), rows, |mark| {
        let names: Vec<&str> = columns.iter().map(|c| c.0).collect();
        let mut out = format!("WITH v ({}) AS (VALUES ", names.join(", "));
        for r in 0..rows {
            out.push_str(if r == 0 { "(" } else { ", (" });
            for (c, (_, pg, lite)) in columns.iter().enumerate() {
                if c > 0 {
                    out.push_str(", ");
                }
                let ty = if mark == '$' { pg } else { lite };
                out.push_str(&format!(
                    "CAST({mark}{} AS {ty})",
                    r * columns.len() + c + 1
                ));
            }
            out.push(')');
        }
        out.push_str(") ");
        out.push_str(update);
        out
    })
}

/// The statement of a shape, made once by `make` (given the dialect's
/// placeholder mark, `$` or `?`) and kept for the life of the process (a few
/// dozen shapes at most).
pub(super) fn shape(
    key: &'static str,
    columns: usize,
    rows: usize,
    make: impl Fn(char) -> String,
) -> Sql {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    type Shapes = HashMap<(&'static str, usize, usize), Sql>;
    static MADE: OnceLock<Mutex<Shapes>> = OnceLock::new();
    let made = MADE.get_or_init(Default::default);
    let mut made = made.lock().unwrap_or_else(|p| p.into_inner());
    *made.entry((key, columns, rows)).or_insert_with(|| Sql {
        pg: Box::leak(make('$').into_boxed_str()),
        lite: Box::leak(make('?').into_boxed_str()),
    })
}
