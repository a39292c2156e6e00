//! The gRPC `Ingest` service: bidirectional `Ship` stream and unary `Send`.
//!
//! On a `Ship` stream, up to [`PIPELINE`] batches (and [`PIPELINE_BYTES`], or one batch of any
//! size) are in flight at once (so their fsyncs are shared by group commit) and answered in
//! request order. On shutdown a stream stops reading,
//! answers every batch it already read, and ends.

use std::pin::Pin;
use std::sync::Arc;

use futures::stream::FuturesOrdered;
use futures::{Stream, StreamExt};
use prost::Message;
use tokio::sync::{mpsc, watch};
use tonic::{Request, Response, Status, Streaming};

use super::{proto as convert, Auth, BatchResult, Incoming, Ingestor};
use crate::error::ErrorKind;
use crate::proto::{self, ingest_server::Ingest};
use crate::wal::WalError;

/// Batches of one stream processed concurrently.
pub const PIPELINE: usize = 16;

/// Encoded bytes of one stream's batches in flight beyond the first.
pub const PIPELINE_BYTES: usize = 8 << 20;

pub struct IngestService {
    pub ingestor: Arc<Ingestor>,
    pub auth: Auth,
    pub max_batch_events: usize,
    pub shutdown: watch::Receiver<bool>,
}

fn wal_status(e: WalError) -> Status {
    let kind = match e {
        WalError::ShuttingDown => ErrorKind::Unavailable,
        _ => ErrorKind::Internal,
    };
    Status::new(kind.grpc_code(), e.to_string())
}

fn to_response(r: BatchResult) -> proto::ShipResponse {
    proto::ShipResponse {
        accepted: r.accepted,
        rejected: r
            .rejected
            .into_iter()
            .map(|r| proto::Rejected {
                index: r.index,
                event_id: r.event_id,
                reason: r.reason,
            })
            .collect(),
    }
}

fn decode_batch(req: proto::ShipRequest, max: usize) -> Result<Vec<Incoming>, Status> {
    if req.events.len() > max {
        return Err(Status::invalid_argument(format!(
            "batch has {} events, over the limit of {max} (`ingest.max_batch_events`); split it",
            req.events.len()
        )));
    }
    Ok(req
        .events
        .into_iter()
        .map(|p| {
            let wire_bytes = p.encoded_len();
            let id_hint = p.event_id.clone();
            Incoming {
                decoded: convert::decode(p),
                wire_bytes,
                id_hint,
            }
        })
        .collect())
}

fn wire_bytes(batch: &[Incoming]) -> usize {
    batch.iter().map(|i| i.wire_bytes).sum()
}

/// Stores a decoded batch and answers it (a batch that failed to decode is answered as such).
async fn ingest(
    ingestor: &Ingestor,
    tenant: Arc<str>,
    batch: Result<Vec<Incoming>, Status>,
) -> Result<proto::ShipResponse, Status> {
    let result = ingestor.ingest(tenant, batch?).await.map_err(wal_status)?;
    Ok(to_response(result))
}

impl IngestService {
    fn tenant<T>(&self, req: &Request<T>) -> Result<Arc<str>, Status> {
        let header = req
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        self.auth
            .tenant(header)
            .map_err(|e| Status::unauthenticated(e.to_string()))
    }
}

type ShipStream = Pin<Box<dyn Stream<Item = Result<proto::ShipResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Ingest for IngestService {
    type ShipStream = ShipStream;

    async fn ship(
        &self,
        request: Request<Streaming<proto::ShipRequest>>,
    ) -> Result<Response<Self::ShipStream>, Status> {
        let tenant = self.tenant(&request)?;
        let mut inbound = request.into_inner();
        let ingestor = self.ingestor.clone();
        let max = self.max_batch_events;
        let mut shutdown = self.shutdown.clone();
        let (tx, rx) = mpsc::channel(PIPELINE);
        tokio::spawn(async move {
            let mut in_flight = FuturesOrdered::new();
            // Encoded bytes of the batches in flight: read ahead by count and by size, so a
            // stream of huge batches holds one at a time, not PIPELINE of them.
            let mut in_flight_bytes = 0usize;
            let mut reading = true;
            loop {
                let room = in_flight.len() < PIPELINE
                    && (in_flight.is_empty() || in_flight_bytes < PIPELINE_BYTES);
                tokio::select! {
                    biased;
                    Some((bytes, done)) = in_flight.next(), if !in_flight.is_empty() => {
                        in_flight_bytes -= bytes;
                        if tx.send(done).await.is_err() {
                            return;
                        }
                    }
                    changed = shutdown.changed(), if reading => {
                        if changed.is_err() || *shutdown.borrow() {
                            reading = false;
                        }
                    }
                    msg = inbound.next(), if reading && room => {
                        match msg {
                            None => reading = false,
                            Some(Err(status)) => {
                                tracing::debug!(%status, "ship stream ended by the client");
                                reading = false;
                            }
                            Some(Ok(req)) => {
                                let ingestor = ingestor.clone();
                                let tenant = tenant.clone();
                                // Decoding here or inside the future is the same work on the
                                // same task; here, the batch's size is known at once.
                                let batch = decode_batch(req, max);
                                let bytes = batch.as_ref().map_or(0, |b| wire_bytes(b));
                                in_flight_bytes += bytes;
                                in_flight.push_back(async move {
                                    (bytes, ingest(&ingestor, tenant, batch).await)
                                });
                            }
                        }
                    }
                    else => break,
                }
                if !reading && in_flight.is_empty() {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn send(
        &self,
        request: Request<proto::ShipRequest>,
    ) -> Result<Response<proto::ShipResponse>, Status> {
        let tenant = self.tenant(&request)?;
        let batch = decode_batch(request.into_inner(), self.max_batch_events);
        ingest(&self.ingestor, tenant, batch)
            .await
            .map(Response::new)
    }
}
