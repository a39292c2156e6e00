//! `mcp-audit ship`: a log shipper from JSON Lines (files or stdin) to the collector's gRPC
//! `Ship` streams.
//!
//! ```text
//! reader thread ─chunks of lines─▶ parser threads ─encoded events─▶ batcher ─batches─▶ Ship streams
//!  files in order, or stdin          JSON → protobuf, ids          size, linger      acks in order
//! ```
//!
//! Reading, parsing and sending overlap, joined by bounded channels, so memory stays bounded
//! whatever the input size, and a follower (`tail -F log | mcp-audit ship -`) ships each line
//! about `--linger-ms` after it is written. Chunks go to the parser threads round-robin and
//! are taken back in the same order, so batches keep the input's order. An event without an
//! id gets a UUIDv7 here, before its first send: a re-sent batch carries the same ids, and the
//! collector never stores an id twice.
//!
//! Each batch is encoded once, by a parser, and kept as bytes until the collector acknowledges
//! it. A stream answers batches in order; one that fails with a transient status reconnects
//! and re-sends what is unacknowledged. Rejected events are named by `file:line`, as are lines
//! that are not events at all.
//!
//! Not done here: validation beyond the JSON form (the collector checks each event and answers
//! for it), and remembering how far a previous run got (re-shipping is safe, not free).

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use prost::bytes::Bytes;
use prost::Message;
use tokio::sync::{mpsc, Mutex};
use tokio::time::Instant;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;
use tonic::Status;

use super::client::{bearer, channel, ship_encoded, status_text, transient, TlsArgs, DEFAULT_GRPC};
use crate::ingest::{json, proto as convert};
use crate::proto::ShipResponse;

#[derive(clap::Args)]
#[command(after_help = "Memory stays bounded whatever the input size: about \
    --connections × (--in-flight + 1) batches are held for sending, plus a few chunks of \
    256 KiB of lines per parser thread. A batch is at most --batch events and 4 MiB, \
    or one event if that is larger (lines are at most --max-line-bytes).")]
pub struct Args {
    #[arg(long, env = "MCP_AUDIT_ENDPOINT", default_value = DEFAULT_GRPC)]
    endpoint: String,
    #[arg(long, env = "MCP_AUDIT_TOKEN")]
    token: Option<String>,
    #[command(flatten)]
    tls: TlsArgs,
    /// Events per batch.
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Send a partial batch this long after its first event was read, so a follower
    /// (`tail -F log | mcp-audit ship -`) ships each line promptly.
    #[arg(long, default_value_t = 200)]
    linger_ms: u64,
    /// Ship streams, each on its own connection.
    #[arg(long, default_value_t = 2)]
    connections: usize,
    /// Batches sent and not yet acknowledged, per stream.
    #[arg(long, default_value_t = 4)]
    in_flight: usize,
    /// Threads parsing JSON [default: one per core, at most 8].
    #[arg(long)]
    parsers: Option<usize>,
    /// Longer lines are reported as rejected without being held in memory.
    #[arg(long, default_value_t = 4 << 20)]
    max_line_bytes: usize,
    /// Failed attempts in a row, on transient errors, before giving up (0: never give up).
    #[arg(long, default_value_t = 8)]
    retries: u32,
    /// JSON Lines files, shipped in order; `-` or nothing for stdin.
    files: Vec<PathBuf>,
}

/// Bytes of lines per chunk handed to a parser (fewer when the input has nothing more buffered).
const CHUNK_BYTES: usize = 256 << 10;

/// Room past `CHUNK_BYTES`, so the line that fills a chunk rarely makes it grow.
const CHUNK_SLACK: usize = 64 << 10;

/// Encoded bytes per batch: well under the collector's 64 MiB message limit and its 8 MiB
/// read-ahead per stream.
const BATCH_BYTES: usize = 4 << 20;

/// Chunks queued between pipeline stages, per parser thread.
const CHUNKS_QUEUED: usize = 2;

/// Key of a `ShipRequest.events` entry: field 1, length-delimited. A `ShipRequest` is nothing
/// but its events, so encoded entries put back to back are the encoded request.
const EVENTS_KEY: u8 = (1 << 3) | 2;

/// Where a line came from: its input (index into the input names) and line number.
#[derive(Clone, Copy)]
struct Origin {
    input: u32,
    line: u64,
}

/// Consecutive lines of one input, not yet parsed.
struct Chunk {
    input: u32,
    /// The non-blank lines' bytes back to back, without newlines.
    text: Vec<u8>,
    /// Each non-blank line: its number and where it ends in `text`.
    lines: Vec<(u64, usize)>,
    /// Lines over `--max-line-bytes`, dropped while being read.
    too_long: Vec<u64>,
    /// Input bytes read into this chunk, newlines and blank lines included.
    bytes: u64,
}

/// A chunk after parsing.
struct Parsed {
    input: u32,
    /// The good events, each encoded as a `ShipRequest.events` entry, back to back.
    wire: Vec<u8>,
    /// Each good event: its line number and where its entry ends in `wire`.
    events: Vec<(u64, usize)>,
    /// Lines that are not events, with the reason.
    rejected: Vec<(u64, String)>,
    /// Input bytes the chunk covers, for the progress bar.
    bytes: u64,
}

/// One `ShipRequest`, encoded, and where each of its events came from.
struct Batch {
    wire: Bytes,
    origins: Vec<Origin>,
}

/// What every stage reports into: names for messages, the counts, the progress bar.
struct Report {
    names: Vec<String>,
    bar: ProgressBar,
    /// Non-blank lines read.
    read: AtomicU64,
    accepted: AtomicU64,
    rejected: AtomicU64,
}

impl Report {
    fn origin(&self, o: Origin) -> String {
        let name = self.names.get(o.input as usize).map_or("?", String::as_str);
        format!("{name}:{}", o.line)
    }

    /// Printed at once, not collected: a follower never ends, and a huge input must not
    /// pile up its reasons in memory.
    fn rejected(&self, o: Origin, reason: &str) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        let at = self.origin(o);
        self.bar
            .suspend(|| eprintln!("rejected {at}: {}", one_line(reason)));
    }

    fn acknowledged(&self, batch: &Batch, resp: ShipResponse) {
        let accepted = self
            .accepted
            .fetch_add(resp.accepted.len() as u64, Ordering::Relaxed)
            + resp.accepted.len() as u64;
        for r in resp.rejected {
            match batch.origins.get(r.index as usize) {
                Some(o) => self.rejected(*o, &r.reason),
                None => {
                    self.rejected.fetch_add(1, Ordering::Relaxed);
                    let first = batch.origins.first().map(|o| self.origin(*o));
                    self.bar.suspend(|| {
                        eprintln!(
                            "rejected event #{} of the batch from {}: {}",
                            r.index,
                            first.as_deref().unwrap_or("?"),
                            one_line(&r.reason)
                        )
                    });
                }
            }
        }
        self.bar.set_message(format!("{accepted} events shipped"));
    }
}

/// A reason on one line, so each rejection stays one line of output.
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let auth = bearer(args.token.as_deref())?;
    let (names, inputs) = open_inputs(&args.files)?;
    let file_bytes: Option<u64> = inputs
        .iter()
        .map(|i| match i {
            Input::File(f) => f.metadata().ok().map(|m| m.len()),
            Input::Stdin => None,
        })
        .sum();
    let report = Arc::new(Report {
        names,
        bar: progress_bar(file_bytes),
        read: AtomicU64::new(0),
        accepted: AtomicU64::new(0),
        rejected: AtomicU64::new(0),
    });
    // Connect before reading anything, so a wrong endpoint fails at once.
    let connections = args.connections.max(1);
    let tls = args.tls.load()?;
    let mut channels = Vec::with_capacity(connections);
    for _ in 0..connections {
        channels.push(channel(&args.endpoint, &tls).await?);
    }

    let parsers = args
        .parsers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get().min(8)));
    let (chunk_txs, parsed_rxs) = spawn_parsers(parsers.max(1));
    if chunk_txs.is_empty() {
        anyhow::bail!("cannot start any parser thread");
    }
    let max_line = args.max_line_bytes.max(1);
    let names = report.names.clone();
    let reader = std::thread::Builder::new()
        .name("ship-reader".into())
        .spawn(move || read_inputs(names, inputs, chunk_txs, max_line))
        .context("cannot start the reader thread")?;

    let (batch_tx, batch_rx) = mpsc::channel::<Batch>(connections);
    let batcher = tokio::spawn(batch(
        parsed_rxs,
        batch_tx,
        BatchLimits {
            events: args.batch.max(1),
            linger: Duration::from_millis(args.linger_ms),
        },
        report.clone(),
    ));
    let queue = Arc::new(Mutex::new(batch_rx));
    let mut streams = tokio::task::JoinSet::new();
    for channel in channels {
        let stream = Stream {
            channel,
            auth: auth.clone(),
            queue: queue.clone(),
            in_flight: args.in_flight.max(1),
            retries: args.retries,
            report: report.clone(),
        };
        streams.spawn(stream.run());
    }
    let mut failed = None;
    while let Some(done) = streams.join_next().await {
        let result = done.context("a ship stream task failed").and_then(|r| r);
        if let Err(e) = result {
            failed = Some(e);
            break;
        }
    }
    report.bar.finish_and_clear();
    if failed.is_none() {
        // Every stream saw the end of the batches, so the reader and the batcher are done.
        let read = tokio::task::spawn_blocking(move || reader.join())
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_else(|| Err(anyhow::anyhow!("the reader thread failed")));
        failed = batcher
            .await
            .context("the batcher task failed")
            .and(read)
            .err();
    }
    let (accepted, read, rejected) = (
        report.accepted.load(Ordering::Relaxed),
        report.read.load(Ordering::Relaxed),
        report.rejected.load(Ordering::Relaxed),
    );
    eprintln!("shipped {accepted} of {read} events ({rejected} rejected)");
    if let Some(e) = failed {
        // A plain-text client on a TLS port sees the connection break at once (its HTTP/2
        // preface is not a TLS handshake): a broken frame, a broken pipe, a reset.
        let text = format!("{e:#}");
        if args.endpoint.starts_with("http://")
            && accepted == 0
            && (text.contains("h2 protocol error") || text.contains("transport error"))
        {
            return Err(e.context(format!(
                "{} broke the connection before answering; if the collector serves TLS, use https://",
                args.endpoint
            )));
        }
        return Err(e);
    }
    Ok(if rejected == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn progress_bar(file_bytes: Option<u64>) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let (bar, template) = match file_bytes {
        Some(total) => (
            ProgressBar::new(total),
            "{bar:40} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}  {msg}",
        ),
        None => (
            ProgressBar::no_length(),
            "{spinner} {binary_bytes} read {binary_bytes_per_sec}  {msg}",
        ),
    };
    bar.set_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

enum Input {
    Stdin,
    File(File),
}

/// Opens every input before anything is read, so a missing file fails before any shipping.
fn open_inputs(files: &[PathBuf]) -> anyhow::Result<(Vec<String>, Vec<Input>)> {
    if files.is_empty() {
        return Ok((vec!["stdin".into()], vec![Input::Stdin]));
    }
    let mut names = Vec::with_capacity(files.len());
    let mut inputs = Vec::with_capacity(files.len());
    for f in files {
        if f.as_os_str() == "-" {
            names.push("stdin".into());
            inputs.push(Input::Stdin);
        } else {
            let file = File::open(f).with_context(|| format!("cannot open {}", f.display()))?;
            names.push(f.display().to_string());
            inputs.push(Input::File(file));
        }
    }
    Ok((names, inputs))
}

/// Reads every input in order, handing chunks of lines to the parsers round-robin.
fn read_inputs(
    names: Vec<String>,
    inputs: Vec<Input>,
    parsers: Vec<std_mpsc::SyncSender<Chunk>>,
    max_line: usize,
) -> anyhow::Result<()> {
    let mut reader = Reader {
        parsers,
        next: 0,
        max_line,
    };
    for (i, input) in inputs.into_iter().enumerate() {
        let index = u32::try_from(i).context("too many inputs")?;
        let more = match input {
            Input::Stdin => reader.read(index, std::io::stdin().lock()),
            Input::File(f) => reader.read(index, f),
        };
        let name = names.get(i).map_or("input", String::as_str);
        if !more.with_context(|| format!("cannot read {name}"))? {
            break;
        }
    }
    Ok(())
}

struct Reader {
    parsers: Vec<std_mpsc::SyncSender<Chunk>>,
    /// Chunks handed out so far; chunk `n` goes to parser `n % parsers.len()`.
    next: usize,
    max_line: usize,
}

impl Reader {
    /// Reads one input to its end. `Ok(false)` when the parsers are gone (shipping stopped).
    fn read(&mut self, input: u32, from: impl Read) -> std::io::Result<bool> {
        let mut from = BufReader::with_capacity(CHUNK_BYTES, from);
        let mut chunk = Chunk::new(input);
        let mut number = 0u64;
        loop {
            let start = chunk.text.len();
            let limit = self.max_line as u64 + 1;
            let n = (&mut from).take(limit).read_until(b'\n', &mut chunk.text)?;
            if n == 0 {
                break;
            }
            number += 1;
            chunk.bytes += n as u64;
            if chunk.text.last() == Some(&b'\n') {
                chunk.text.pop();
            }
            if chunk.text.len() - start > self.max_line {
                // No newline within the limit: drop the line's bytes, here and to come.
                chunk.text.truncate(start);
                chunk.bytes += from.skip_until(b'\n')? as u64;
                chunk.too_long.push(number);
            } else if chunk.text[start..].iter().all(u8::is_ascii_whitespace) {
                chunk.text.truncate(start);
            } else {
                chunk.lines.push((number, chunk.text.len()));
            }
            // Hand over what is read when the next read may wait for a writer (a follower),
            // not only when the chunk is full.
            let full = chunk.text.len() >= CHUNK_BYTES;
            if (full || from.buffer().is_empty()) && !chunk.is_empty() {
                let next = Chunk::new(input);
                if !self.send(std::mem::replace(&mut chunk, next)) {
                    return Ok(false);
                }
            }
        }
        Ok(chunk.is_empty() || self.send(chunk))
    }

    fn send(&mut self, chunk: Chunk) -> bool {
        let to = &self.parsers[self.next % self.parsers.len()];
        self.next += 1;
        to.send(chunk).is_ok()
    }
}

impl Chunk {
    fn new(input: u32) -> Self {
        Self {
            input,
            // Sized once: growing by doubling would allocate and free several large buffers
            // per chunk, which the allocator keeps resident across threads.
            text: Vec::with_capacity(CHUNK_BYTES + CHUNK_SLACK),
            lines: Vec::new(),
            too_long: Vec::new(),
            bytes: 0,
        }
    }

    fn is_empty(&self) -> bool {
        self.lines.is_empty() && self.too_long.is_empty()
    }
}

/// Starts the parser threads; returns their inputs and outputs, in round-robin order.
fn spawn_parsers(
    n: usize,
) -> (
    Vec<std_mpsc::SyncSender<Chunk>>,
    Vec<mpsc::Receiver<Parsed>>,
) {
    let mut inputs = Vec::with_capacity(n);
    let mut outputs = Vec::with_capacity(n);
    for i in 0..n {
        let (chunk_tx, chunk_rx) = std_mpsc::sync_channel::<Chunk>(CHUNKS_QUEUED);
        let (parsed_tx, parsed_rx) = mpsc::channel::<Parsed>(CHUNKS_QUEUED);
        let spawned = std::thread::Builder::new()
            .name(format!("ship-parser-{i}"))
            .spawn(move || {
                while let Ok(chunk) = chunk_rx.recv() {
                    if parsed_tx.blocking_send(parse(chunk)).is_err() {
                        return;
                    }
                }
            });
        // A parser that could not start drops its channels: the reader then stops, and
        // whatever was read is still shipped.
        if spawned.is_ok() {
            inputs.push(chunk_tx);
            outputs.push(parsed_rx);
        }
    }
    (inputs, outputs)
}

fn parse(chunk: Chunk) -> Parsed {
    let mut parsed = Parsed {
        input: chunk.input,
        wire: Vec::with_capacity(chunk.text.len()),
        events: Vec::with_capacity(chunk.lines.len()),
        rejected: chunk
            .too_long
            .iter()
            .map(|&line| (line, "line is longer than `--max-line-bytes`".to_string()))
            .collect(),
        bytes: chunk.bytes,
    };
    let mut start = 0;
    for &(line, end) in &chunk.lines {
        match event(&chunk.text[start..end]) {
            Ok(event) => {
                parsed.wire.push(EVENTS_KEY);
                // Writing into a Vec cannot run out of room.
                if event.encode_length_delimited(&mut parsed.wire).is_ok() {
                    parsed.events.push((line, parsed.wire.len()));
                }
            }
            Err(reason) => parsed.rejected.push((line, reason)),
        }
        start = end;
    }
    parsed
}

/// One line as a protobuf event, with an id.
fn event(line: &[u8]) -> Result<crate::proto::ToolCallEvent, String> {
    let text = std::str::from_utf8(line).map_err(|e| {
        format!(
            "line is not valid UTF-8 (byte {} of the line)",
            e.valid_up_to() + 1
        )
    })?;
    let mut event = json::decode_line(text).map_err(|invalid| invalid.reason)?;
    // Assigned here, not by the collector, so a re-sent batch keeps its ids.
    if event.event_id.is_empty() {
        event.event_id = uuid::Uuid::now_v7().to_string();
    }
    Ok(convert::into_proto(event))
}

struct BatchLimits {
    events: usize,
    linger: Duration,
}

/// A batch being filled.
#[derive(Default)]
struct Filling {
    wire: Vec<u8>,
    origins: Vec<Origin>,
    /// When the first event went in: the batch goes out `linger` later at the latest.
    since: Option<Instant>,
}

impl Filling {
    /// The batch so far; the next one starts with room for as many bytes, sized once
    /// rather than grown by doubling (see [`Chunk::new`]).
    fn take(&mut self) -> Batch {
        let room = self.wire.len().min(BATCH_BYTES);
        let done = std::mem::replace(
            self,
            Filling {
                wire: Vec::with_capacity(room),
                ..Filling::default()
            },
        );
        Batch {
            wire: Bytes::from(done.wire),
            origins: done.origins,
        }
    }
}

/// Takes parsed chunks back in input order and cuts them into batches for the streams.
async fn batch(
    mut parsed: Vec<mpsc::Receiver<Parsed>>,
    out: mpsc::Sender<Batch>,
    limits: BatchLimits,
    report: Arc<Report>,
) {
    let n = parsed.len();
    let mut next = 0usize;
    let mut filling = Filling::default();
    loop {
        let deadline = filling.since.map(|t| t + limits.linger);
        let Some(source) = parsed.get_mut(next % n.max(1)) else {
            break;
        };
        let chunk = tokio::select! {
            chunk = source.recv() => chunk,
            () = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                if out.send(filling.take()).await.is_err() {
                    return;
                }
                continue;
            }
        };
        // The next chunk in order was never made: every input is read.
        let Some(chunk) = chunk else { break };
        next += 1;
        report.bar.inc(chunk.bytes);
        report.read.fetch_add(
            (chunk.events.len() + chunk.rejected.len()) as u64,
            Ordering::Relaxed,
        );
        for (line, reason) in &chunk.rejected {
            let o = Origin {
                input: chunk.input,
                line: *line,
            };
            report.rejected(o, reason);
        }
        let mut start = 0;
        for &(line, end) in &chunk.events {
            let entry = &chunk.wire[start..end];
            start = end;
            let full = filling.origins.len() >= limits.events
                || filling.wire.len() + entry.len() > BATCH_BYTES;
            if full && !filling.origins.is_empty() && out.send(filling.take()).await.is_err() {
                return;
            }
            filling.wire.extend_from_slice(entry);
            filling.origins.push(Origin {
                input: chunk.input,
                line,
            });
            filling.since.get_or_insert_with(Instant::now);
        }
        if filling.origins.len() >= limits.events && out.send(filling.take()).await.is_err() {
            return;
        }
    }
    if !filling.origins.is_empty() {
        let _ = out.send(filling.take()).await;
    }
}

/// One `Ship` stream: takes batches from the shared queue while it has room, and re-opens
/// itself after a transient failure.
struct Stream {
    channel: Channel,
    auth: Option<MetadataValue<Ascii>>,
    /// Shared by every stream, so a stream that is reconnecting leaves batches to the others.
    queue: Arc<Mutex<mpsc::Receiver<Batch>>>,
    in_flight: usize,
    retries: u32,
    report: Arc<Report>,
}

/// Where a stream is, across reconnects.
#[derive(Default)]
struct Progress {
    /// Sent and not yet acknowledged, in send order (the order answers come in).
    unacked: VecDeque<Batch>,
    /// The queue is closed: nothing more to take.
    drained: bool,
    /// Failed attempts since the last acknowledgement.
    failures: u32,
}

impl Stream {
    async fn run(self) -> anyhow::Result<()> {
        let mut p = Progress::default();
        loop {
            let status = match self.session(&mut p).await {
                Ok(()) => return Ok(()),
                Err(status) => status,
            };
            let first = p.unacked.front().and_then(|b| b.origins.first());
            let at = first.map(|o| self.report.origin(*o));
            let batch = at.map_or_else(
                || " the stream:".to_string(),
                |at| format!(" the batch from {at}:"),
            );
            if !transient(&status) {
                anyhow::bail!(
                    "the collector refused{batch} {:?}: {}",
                    status.code(),
                    status_text(&status)
                );
            }
            p.failures += 1;
            if self.retries > 0 && p.failures >= self.retries {
                anyhow::bail!(
                    "gave up after {} failed attempts:{batch} {}; shipping again is safe (the collector stores no event twice)",
                    p.failures,
                    status_text(&status)
                );
            }
            let wait = Duration::from_millis(100 * 2u64.pow(p.failures.min(6)))
                + Duration::from_millis(rand::random::<u64>() % 100);
            self.report.bar.suspend(|| {
                eprintln!(
                    "reconnecting in {:.1} s after: {} ({} batches to re-send)",
                    wait.as_secs_f64(),
                    one_line(&status_text(&status)),
                    p.unacked.len()
                )
            });
            tokio::time::sleep(wait).await;
        }
    }

    /// Opens a stream, re-sends what is unacknowledged, then sends and matches answers until
    /// every batch is acknowledged (`Ok`) or the stream fails.
    async fn session(&self, p: &mut Progress) -> Result<(), Status> {
        let (tx, rx) = mpsc::channel::<Bytes>(self.in_flight);
        let requests = tokio_stream::wrappers::ReceiverStream::new(rx);
        let mut answers = ship_encoded(self.channel.clone(), requests, self.auth.clone()).await?;
        let closed = || Status::unavailable("the stream to the collector closed");
        // Room for all of them: never more than `in_flight` are unacknowledged.
        for b in &p.unacked {
            tx.send(b.wire.clone()).await.map_err(|_| closed())?;
        }
        let mut tx = Some(tx);
        loop {
            if p.drained && p.unacked.is_empty() {
                return Ok(());
            }
            let room = !p.drained && p.unacked.len() < self.in_flight;
            tokio::select! {
                biased;
                answer = answers.next() => match answer {
                    Some(Ok(resp)) => {
                        let batch = p.unacked.pop_front().ok_or_else(|| {
                            Status::internal("the collector answered a batch that was not sent")
                        })?;
                        self.report.acknowledged(&batch, resp);
                        p.failures = 0;
                    }
                    Some(Err(status)) => return Err(status),
                    None => {
                        return Err(Status::unavailable(format!(
                            "the collector ended the stream with {} batches unanswered",
                            p.unacked.len()
                        )))
                    }
                },
                next = async { self.queue.lock().await.recv().await }, if room => match next {
                    Some(batch) => {
                        let sender = tx.as_ref().ok_or_else(closed)?;
                        sender.send(batch.wire.clone()).await.map_err(|_| closed())?;
                        p.unacked.push_back(batch);
                    }
                    None => {
                        p.drained = true;
                        // Ends the request side, so the collector ends the stream once it
                        // has answered everything.
                        tx = None;
                    }
                },
            }
        }
    }
}
