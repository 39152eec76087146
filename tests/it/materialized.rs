//! `query::materialized`: the views detect and the compliance report compute once for all
//! their reads give the rows the views give, and dropping the guard puts the views back.

use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::TableType;
use sts_audit::aws::AwsOptions;
use sts_audit::lake::LakeLocation;
use sts_audit::query::catalog::{self, QueryScope};
use sts_audit::query::materialized;
use sts_audit::render;

use crate::util::*;

/// Every row of `view`, as sorted JSON lines (the order of rows is the engine's).
async fn rows(ctx: &SessionContext, view: &str) -> Vec<String> {
    let frame = ctx.sql(&format!("SELECT * FROM {view}")).await.unwrap();
    let schema = std::sync::Arc::new(frame.schema().as_arrow().clone());
    let batches = frame.collect().await.unwrap();
    let mut lines: Vec<String> = render::json_rows(&schema, batches)
        .await
        .unwrap()
        .iter()
        .map(|row| serde_json::to_string(row).unwrap())
        .collect();
    lines.sort();
    lines
}

async fn table_type(ctx: &SessionContext, name: &str) -> TableType {
    ctx.table_provider(name).await.unwrap().table_type()
}

#[test]
fn computed_views_give_the_views_rows_and_are_put_back() {
    let lake = sample_lake();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let location = LakeLocation::Local(lake.path().to_path_buf());
        let scope = QueryScope::default();
        let ctx = catalog::open(&location, &AwsOptions::default(), &scope, 1 << 30)
            .await
            .unwrap();
        let views = ["assumptions", "sessions", "caller_sources"];
        let mut before = Vec::new();
        for view in views {
            before.push(rows(&ctx, view).await);
        }
        assert!(
            before.iter().all(|rows| !rows.is_empty()),
            "sample-logs has rows in each"
        );

        let computed = materialized::materialize(&ctx, &["assumptions", "sessions"])
            .await
            .unwrap();
        // Computed: the two named; planned again over them: the views between and after.
        assert_eq!(
            computed.replaced().collect::<Vec<_>>(),
            [
                "assumptions",
                "issued_credentials",
                "session_usage",
                "sessions",
                "caller_sources"
            ]
        );
        assert_eq!(table_type(&ctx, "sessions").await, TableType::View);
        for (view, expected) in views.iter().zip(&before) {
            assert_eq!(&rows(&ctx, view).await, expected, "{view} computed once");
        }
        drop(computed);
        for (view, expected) in views.iter().zip(&before) {
            assert_eq!(&rows(&ctx, view).await, expected, "{view} put back");
        }
    });
}
