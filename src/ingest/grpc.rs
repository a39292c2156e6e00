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

use super::{proto as convert, BatchResult, Incoming, Ingestor};
use crate::auth::{Auth, Principal, Refusal, Role};
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
    /// `grpc.max_message_bytes`, to name it when a message is over it.
    pub max_message_bytes: usize,
    pub shutdown: watch::Receiver<bool>,
}

fn wal_status(e: WalError) -> Status {
    Status::new(e.kind().grpc_code(), e.to_string())
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

/// The status a `Ship` stream ends with when reading its next message failed, or `None` when
/// the client simply went away. `received` messages were read before it.
fn stream_error(status: &Status, received: usize, max_bytes: usize) -> Option<Status> {
    let which = format!("message {} of this stream", received + 1);
    match status.code() {
        tonic::Code::OutOfRange | tonic::Code::ResourceExhausted => Some(Status::out_of_range(format!(
            "{which} is over the limit of {max_bytes} bytes (`grpc.max_message_bytes`): {}; send smaller batches. The batches before it were answered",
            status.message()
        ))),
        tonic::Code::InvalidArgument => Some(Status::invalid_argument(format!(
            "{which}: {}. The batches before it were answered",
            status.message()
        ))),
        // A framing error (a bad compression flag, a truncated message) is the client's too.
        tonic::Code::Internal => Some(Status::invalid_argument(format!(
            "{which} is not a valid gRPC message ({}). The batches before it were answered",
            status.message()
        ))),
        _ => None,
    }
}

/// Stores a decoded batch and answers it (a batch that failed to decode is answered as such,
/// one over the caller's quota is refused whole and can be sent again).
async fn ingest(
    ingestor: &Ingestor,
    auth: &Auth,
    who: &Principal,
    batch: Result<Vec<Incoming>, Status>,
) -> Result<proto::ShipResponse, Status> {
    let batch = batch?;
    let n = u32::try_from(batch.len()).unwrap_or(u32::MAX);
    auth.take_ingest(who, n).map_err(refusal_status)?;
    let result = ingestor
        .ingest(who.tenant.clone(), batch)
        .await
        .map_err(wal_status)?;
    Ok(to_response(result))
}

/// A refusal as a gRPC status; a quota or lockout carries `retry-after` (seconds) metadata.
pub fn refusal_status(r: Refusal) -> Status {
    let mut status = Status::new(r.kind().grpc_code(), r.to_string());
    if let Some(secs) = r.retry_after_secs() {
        if let Ok(v) = secs.to_string().parse() {
            status.metadata_mut().insert("retry-after", v);
        }
    }
    status
}

/// The caller of an ingest request (native or OTLP), who must hold the `ingest` role.
pub async fn ingest_caller<T>(auth: &Auth, req: &Request<T>) -> Result<Principal, Status> {
    let header = req
        .metadata()
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    let addr = req.remote_addr().map(|a| a.ip());
    let who = auth
        .authenticate(header, addr)
        .await
        .map_err(refusal_status)?;
    who.require(Role::Ingest).map_err(refusal_status)?;
    Ok(who)
}

impl IngestService {
    async fn caller<T>(&self, req: &Request<T>) -> Result<Principal, Status> {
        ingest_caller(&self.auth, req).await
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
        let who = Arc::new(self.caller(&request).await?);
        let auth = self.auth.clone();
        let mut inbound = request.into_inner();
        let ingestor = self.ingestor.clone();
        let max = self.max_batch_events;
        let mut shutdown = self.shutdown.clone();
        let max_bytes = self.max_message_bytes;
        let (tx, rx) = mpsc::channel(PIPELINE);
        tokio::spawn(async move {
            let mut in_flight = FuturesOrdered::new();
            // Encoded bytes of the batches in flight: read ahead by count and by size, so a
            // stream of huge batches holds one at a time, not PIPELINE of them.
            let mut in_flight_bytes = 0usize;
            let mut reading = true;
            // Set when the client sent something unusable: the stream ends with it once every
            // batch read before it is answered.
            let mut failure: Option<Status> = None;
            let mut received = 0usize;
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
                                failure = stream_error(&status, received, max_bytes);
                                if failure.is_none() {
                                    tracing::debug!(%status, "ship stream ended by the client");
                                }
                                reading = false;
                            }
                            Some(Ok(req)) => {
                                received += 1;
                                let ingestor = ingestor.clone();
                                let auth = auth.clone();
                                let who = who.clone();
                                // Decoding here or inside the future is the same work on the
                                // same task; here, the batch's size is known at once.
                                let batch = decode_batch(req, max);
                                let bytes = batch.as_ref().map_or(0, |b| wire_bytes(b));
                                in_flight_bytes += bytes;
                                in_flight.push_back(async move {
                                    (bytes, ingest(&ingestor, &auth, &who, batch).await)
                                });
                            }
                        }
                    }
                    else => break,
                }
                if !reading && in_flight.is_empty() {
                    if let Some(status) = failure.take() {
                        let _ = tx.send(Err(status)).await;
                    }
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
        let who = self.caller(&request).await?;
        let batch = decode_batch(request.into_inner(), self.max_batch_events);
        ingest(&self.ingestor, &self.auth, &who, batch)
            .await
            .map(Response::new)
    }
}
