//! The gRPC codec of the ingest service: prost, except that a message that does not decode is
//! `INVALID_ARGUMENT` (the client sent something wrong and must fix it) instead of prost's
//! `INTERNAL` (which says the server is at fault and invites retries of the same bytes).

use std::marker::PhantomData;

use prost::Message;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic::Status;
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

/// [`ProstCodec`] with client-fault decode errors; named by `build.rs` for the generated code.
pub struct StrictCodec<T, U>(ProstCodec<T, U>);

impl<T, U> Default for StrictCodec<T, U> {
    fn default() -> Self {
        Self(ProstCodec::default())
    }
}

impl<T, U> Codec for StrictCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = StrictDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        self.0.encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        StrictDecoder(self.0.decoder(), PhantomData)
    }
}

pub struct StrictDecoder<U>(ProstDecoder<U>, PhantomData<U>);

impl<U: Message + Default> Decoder for StrictDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        self.0.decode(buf).map_err(|s| {
            let path = std::any::type_name::<U>();
            let name = path.rsplit("::").next().unwrap_or("message");
            let definitions = if path.contains("opentelemetry") {
                "the exporter's OTLP"
            } else {
                "the client's mcpaudit.v1"
            };
            Status::invalid_argument(format!(
                "the message is not a valid protobuf `{name}` ({}); check {definitions} definitions",
                s.message()
            ))
        })
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}
