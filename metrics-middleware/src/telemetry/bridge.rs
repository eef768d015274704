//! `tracing` spans as OpenTelemetry spans: a `tracing-subscriber` layer that
//! makes each span opened inside a sampled trace (`#[instrument]`,
//! `info_span!`) a child span, exported with the server span, with its
//! fields as attributes.
//!
//! The span's context is made current while the span is entered, so log
//! lines written inside it, spans below it and outgoing calls made from it
//! name it as theirs. A span opened outside a sampled trace costs a check
//! of the current context and nothing else; while no bridged span exists,
//! entering and leaving spans costs one atomic load.
use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};

use opentelemetry::trace::{SpanKind, TraceContextExt, Tracer as _};
use opentelemetry::{Context, ContextGuard, KeyValue, Value};
use opentelemetry_sdk::trace::SdkTracer;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::Subscriber;
use tracing_subscriber::layer::Context as LayerContext;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// The most attributes a bridged span takes from its fields.
const MAX_FIELDS: usize = 32;

/// Bridged spans alive in the process: while there are none, entering and
/// leaving `tracing` spans has nothing to look up.
static LIVE: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// The contexts attached on this thread for entered bridged spans.
    static ENTERED: RefCell<Vec<(Id, ContextGuard)>> = const { RefCell::new(Vec::new()) };
}

/// The layer; get it from
/// [`Observability::span_layer`](crate::Observability::span_layer) (which
/// [`install`](crate::ObservabilityBuilder::install) adds for you).
#[derive(Clone)]
pub struct SpanBridge {
    tracer: SdkTracer,
}

impl fmt::Debug for SpanBridge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpanBridge").finish_non_exhaustive()
    }
}

impl SpanBridge {
    pub(crate) fn new(tracer: SdkTracer) -> Self {
        Self { tracer }
    }
}

/// The OpenTelemetry side of a bridged span, kept in its extensions.
struct Bridged {
    cx: Context,
}

impl Drop for Bridged {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::Relaxed);
    }
}

impl<S> Layer<S> for SpanBridge
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: LayerContext<'_, S>) {
        // The parent: a bridged `tracing` parent, else the current
        // OpenTelemetry context (the request's, for a handler's spans).
        let tracing_parent = if let Some(parent) = attrs.parent() {
            ctx.span(parent)
        } else if attrs.is_contextual() {
            ctx.lookup_current()
        } else {
            None
        };
        let bridged_parent = tracing_parent
            .as_ref()
            .and_then(|parent| parent.extensions().get::<Bridged>().map(|b| b.cx.clone()));
        let parent_cx = match bridged_parent {
            Some(cx) => cx,
            None => match Context::map_current(|cx| {
                cx.span().span_context().is_sampled().then(|| cx.clone())
            }) {
                Some(cx) => cx,
                None => return,
            },
        };
        if !parent_cx.span().span_context().is_sampled() {
            return;
        }
        let mut fields = Fields(Vec::with_capacity(attrs.fields().len().min(MAX_FIELDS)));
        attrs.record(&mut fields);
        let span = self
            .tracer
            .span_builder(Cow::Borrowed(attrs.metadata().name()))
            .with_kind(SpanKind::Internal)
            .with_attributes(fields.0)
            .start_with_context(&self.tracer, &parent_cx);
        let cx = parent_cx.with_span(span);
        if let Some(span) = ctx.span(id) {
            LIVE.fetch_add(1, Ordering::Relaxed);
            span.extensions_mut().insert(Bridged { cx });
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: LayerContext<'_, S>) {
        if LIVE.load(Ordering::Relaxed) == 0 {
            return;
        }
        if let Some(span) = ctx.span(id) {
            if let Some(bridged) = span.extensions().get::<Bridged>() {
                let mut fields = Fields(Vec::new());
                values.record(&mut fields);
                bridged.cx.span().set_attributes(fields.0);
            }
        }
    }

    fn on_enter(&self, id: &Id, ctx: LayerContext<'_, S>) {
        if LIVE.load(Ordering::Relaxed) == 0 {
            return;
        }
        let Some(span) = ctx.span(id) else {
            return;
        };
        let cx = span.extensions().get::<Bridged>().map(|b| b.cx.clone());
        if let Some(cx) = cx {
            let guard = cx.attach();
            ENTERED.with(|entered| entered.borrow_mut().push((id.clone(), guard)));
        }
    }

    fn on_exit(&self, id: &Id, _: LayerContext<'_, S>) {
        if LIVE.load(Ordering::Relaxed) == 0 {
            return;
        }
        let guard = ENTERED.with(|entered| {
            let mut entered = entered.borrow_mut();
            let position = entered
                .iter()
                .rposition(|(entered_id, _)| entered_id == id)?;
            Some(entered.remove(position).1)
        });
        drop(guard);
    }

    fn on_close(&self, id: Id, ctx: LayerContext<'_, S>) {
        if LIVE.load(Ordering::Relaxed) == 0 {
            return;
        }
        if let Some(span) = ctx.span(&id) {
            if let Some(bridged) = span.extensions_mut().remove::<Bridged>() {
                bridged.cx.span().end();
            }
        }
    }
}

/// A span's fields as attributes, typed; at most [`MAX_FIELDS`].
struct Fields(Vec<KeyValue>);

impl Fields {
    fn push(&mut self, field: &Field, value: Value) {
        if self.0.len() < MAX_FIELDS {
            self.0.push(KeyValue::new(field.name(), value));
        }
    }
}

impl Visit for Fields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field, Value::F64(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, Value::I64(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        match i64::try_from(value) {
            Ok(value) => self.push(field, Value::I64(value)),
            Err(_) => self.push(field, Value::String(value.to_string().into())),
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, Value::Bool(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, Value::String(value.to_owned().into()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.push(field, Value::String(format!("{value:?}").into()));
    }
}
