//! Crash safety: the real binary is SIGKILLed while events stream in; after a restart every
//! acknowledged event is searchable exactly once.

use crate::common::Collector;
use std::collections::HashSet;
use std::time::Duration;

use futures::StreamExt;
use mcp_audit::demo::Generator;
use mcp_audit::ingest::proto as convert;
use mcp_audit::proto::ShipRequest;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
// The first child is killed and waited for inside the loop once enough acks arrived; the test
// asserts that this happened.
#[allow(clippy::zombie_processes)]
async fn sigkill_mid_stream_loses_no_acknowledged_event_and_duplicates_none() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let collector = Collector::start(&dir, &[]).await;
    let mut client = collector.client().await;
    let (tx, rx) = tokio::sync::mpsc::channel::<ShipRequest>(8);
    let mut responses = client
        .ship(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let mut g = Generator::new(3);
    let mut sent: Vec<Vec<String>> = Vec::new();
    let mut acked: HashSet<String> = HashSet::new();
    let now = time::OffsetDateTime::now_utc();
    // Producer: batches of 100, up to 8 in flight; the collector is killed after ~40 acks.
    let mut batch_no = 0;
    let mut killed = false;
    let mut collector = Some(collector);
    while batch_no < 400 {
        while sent.len() - acked_batches(&acked, &sent) < 8 && batch_no < 400 {
            let events: Vec<_> = (0..100)
                .map(|i| {
                    let mut e = g.benign(now, 600);
                    e.event_id = format!("crash-{batch_no}-{i}");
                    convert::encode(&e)
                })
                .collect();
            sent.push((0..100).map(|i| format!("crash-{batch_no}-{i}")).collect());
            if tx.send(ShipRequest { events }).await.is_err() {
                break;
            }
            batch_no += 1;
        }
        match tokio::time::timeout(Duration::from_secs(10), responses.next()).await {
            Ok(Some(Ok(resp))) => {
                acked.extend(resp.accepted);
                if !killed && acked.len() >= 4000 {
                    // SIGKILL: no chance to flush anything.
                    collector.take().unwrap().kill();
                    killed = true;
                }
            }
            _ => break,
        }
    }
    assert!(killed, "the collector should have been killed mid-stream");
    assert!(acked.len() >= 4000);
    drop(tx);

    let collector = Collector::start(&dir, &[]).await;
    let ids = collector.all_ids().await;
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "no event is stored twice");
    let missing: Vec<&String> = acked.iter().filter(|id| !unique.contains(id)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged events lost, e.g. {:?}",
        missing.len(),
        missing.first()
    );
    let all_sent: HashSet<&String> = sent.iter().flatten().collect();
    assert!(
        ids.iter().all(|id| all_sent.contains(id)),
        "only events that were sent are stored"
    );

    // Retrying every batch after the crash (as a client would) stores nothing twice.
    let mut client = collector.client().await;
    let mut g = Generator::new(3);
    for (b, ids_of_batch) in sent.iter().enumerate().take(60) {
        let events = ids_of_batch
            .iter()
            .map(|id| {
                let mut e = g.benign(now, 600);
                e.event_id = id.clone();
                convert::encode(&e)
            })
            .collect();
        let resp = client
            .send(ShipRequest { events })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(resp.accepted.len(), 100, "batch {b}");
    }
    // Anything a retry had stored again would be indexed by now.
    collector.wait_indexed().await;
    let after = collector.all_ids().await;
    let unique_after: HashSet<&String> = after.iter().collect();
    assert_eq!(unique_after.len(), after.len(), "retries never duplicate");
    assert!(ids.iter().all(|id| unique_after.contains(id)));
    collector.kill();
}

fn acked_batches(acked: &HashSet<String>, sent: &[Vec<String>]) -> usize {
    sent.iter()
        .filter(|b| b.last().is_some_and(|id| acked.contains(id)))
        .count()
}
