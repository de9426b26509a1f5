//! Events: Prefect 3.9.1's `Event` / `ReceivedEvent` (`server/events/schemas/events.py`),
//! its `EventFilter` and criteria (`server/events/filters.py`) and the flow run state
//! change event its server emits for every accepted flow run transition
//! (`server/models/events.py`, `flow_run_state_change_event`).
//!
//! [`EventFilter::matches`] is the reference every store's answer and every `/events/out`
//! subscription must equal. It follows the SQL Prefect's `/events/filter` runs (for the
//! `related` criterion too, which Prefect's in-memory `includes` does not check).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::logs::TextQuery;
use crate::model::FlowRun;
use crate::state::State;

/// A resource: string labels, `prefect.resource.id` always among them (related resources
/// also have `prefect.resource.role`).
pub type Resource = BTreeMap<String, String>;

/// The label naming a resource.
pub const RESOURCE_ID: &str = "prefect.resource.id";
/// The label naming a related resource's role.
pub const RESOURCE_ROLE: &str = "prefect.resource.role";
/// The longest event name Prefect accepts (`PREFECT_SERVER_EVENTS_MAXIMUM_EVENT_NAME_LENGTH`).
pub const MAX_EVENT_NAME_CHARS: usize = 1024;

/// One event as the server keeps it (Prefect's `ReceivedEvent`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// When it happened (the sender's clock).
    pub occurred: DateTime<Utc>,
    /// Its name (`prefect.flow-run.Running`).
    pub event: String,
    /// The resource it concerns.
    pub resource: Resource,
    /// Other resources involved, each with a role.
    #[serde(default)]
    pub related: Vec<Resource>,
    /// What happened, open-ended.
    #[serde(default)]
    pub payload: Map<String, Value>,
    /// The sender's id for it.
    pub id: Uuid,
    /// The event it follows, if any.
    #[serde(default)]
    pub follows: Option<Uuid>,
    /// When the server received it.
    pub received: DateTime<Utc>,
}

/// An event as a client sends it (Prefect's `Event`: no `received`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct IncomingEvent {
    /// When it happened.
    pub occurred: DateTime<Utc>,
    /// Its name.
    pub event: String,
    /// The resource it concerns.
    pub resource: Resource,
    /// Other resources.
    #[serde(default)]
    pub related: Vec<Resource>,
    /// What happened.
    #[serde(default)]
    pub payload: Map<String, Value>,
    /// Its id.
    pub id: Uuid,
    /// The event it follows.
    #[serde(default)]
    pub follows: Option<Uuid>,
}

impl IncomingEvent {
    /// Checks Prefect's rules (a name of at most [`MAX_EVENT_NAME_CHARS`], a resource with
    /// `prefect.resource.id`, related resources with an id and a role) and stamps `received`.
    ///
    /// # Errors
    /// A sentence naming the field that breaks a rule.
    pub fn receive(self, received: DateTime<Utc>) -> Result<Event, String> {
        if self.event.chars().count() > MAX_EVENT_NAME_CHARS {
            return Err(format!(
                "event: Event name must be at most {MAX_EVENT_NAME_CHARS} characters"
            ));
        }
        if !self.resource.contains_key(RESOURCE_ID) {
            return Err(format!(
                "resource: Resources must include the {RESOURCE_ID} label"
            ));
        }
        for r in &self.related {
            if !r.contains_key(RESOURCE_ID) {
                return Err(format!(
                    "related: Resources must include the {RESOURCE_ID} label"
                ));
            }
            if !r.contains_key(RESOURCE_ROLE) {
                return Err(format!(
                    "related: Related Resources must include the {RESOURCE_ROLE} label"
                ));
            }
        }
        Ok(Event {
            occurred: self.occurred,
            event: self.event,
            resource: self.resource,
            related: self.related,
            payload: self.payload,
            id: self.id,
            follows: self.follows,
            received,
        })
    }
}

impl Event {
    /// The primary resource's id (`""` when missing, which [`IncomingEvent::receive`] refuses).
    pub fn resource_id(&self) -> &str {
        self.resource.get(RESOURCE_ID).map_or("", String::as_str)
    }
}

/// A label pattern (Prefect's `matches` as its SQL does it): `*` any run of characters,
/// `?` one character, a leading `!` negates; a missing label matches nothing.
pub fn label_matches(pattern: &str, value: Option<&str>) -> bool {
    let Some(value) = value else { return false };
    let (positive, pattern) = match pattern.strip_prefix('!') {
        Some(p) => (false, p),
        None => (true, pattern),
    };
    glob(
        &pattern.chars().collect::<Vec<_>>(),
        &value.chars().collect::<Vec<_>>(),
    ) == positive
}

fn glob(p: &[char], v: &[char]) -> bool {
    match p.first() {
        None => v.is_empty(),
        Some('*') => (0..=v.len()).any(|i| glob(&p[1..], &v[i..])),
        Some('?') => !v.is_empty() && glob(&p[1..], &v[1..]),
        Some(c) => v.first() == Some(c) && glob(&p[1..], &v[1..]),
    }
}

/// Prefect's `ResourceSpecification`: label → one pattern or a list (any must match; an
/// empty list matches nothing).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Labels(pub BTreeMap<String, OneOrMany>);

/// A label's patterns: one string or a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One pattern.
    One(String),
    /// Several patterns, any of which may match.
    Many(Vec<String>),
}

impl OneOrMany {
    fn patterns(&self) -> Vec<&str> {
        match self {
            Self::One(s) => vec![s.as_str()],
            Self::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

impl Labels {
    /// Whether `resource` (whose role is `role`, `""` for the primary resource) has every
    /// label. `prefect.resource.role` compares exactly, as Prefect's SQL does.
    fn matches(&self, resource: &Resource, role: &str) -> bool {
        self.0.iter().all(|(label, expected)| {
            let patterns = expected.patterns();
            if label == RESOURCE_ROLE {
                return patterns.contains(&role);
            }
            patterns
                .iter()
                .any(|p| label_matches(p, resource.get(label).map(String::as_str)))
        })
    }
}

/// `EventOccurredFilter`: `since <= occurred <= until`. Absent bounds are Prefect's
/// defaults, fixed by [`EventFilter::resolve`]: since the start of the day 180 days ago,
/// until now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OccurredFilter {
    /// Earliest included.
    #[serde(default)]
    pub since: Option<DateTime<Utc>>,
    /// Latest included.
    #[serde(default)]
    pub until: Option<DateTime<Utc>>,
}

/// `EventNameFilter`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameFilter {
    /// The name starts with one of these.
    #[serde(default)]
    pub prefix: Option<Vec<String>>,
    /// The name starts with none of these.
    #[serde(default)]
    pub exclude_prefix: Option<Vec<String>>,
    /// The name is one of these.
    #[serde(default)]
    pub name: Option<Vec<String>>,
    /// The name is none of these.
    #[serde(default)]
    pub exclude_name: Option<Vec<String>>,
}

/// `EventResourceFilter` (the primary resource).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceFilter {
    /// Its id is one of these.
    #[serde(default)]
    pub id: Option<Vec<String>>,
    /// Its id starts with one of these.
    #[serde(default)]
    pub id_prefix: Option<Vec<String>>,
    /// It has these labels.
    #[serde(default)]
    pub labels: Option<Labels>,
    /// Only the first event (in the filter's order) of each resource id.
    #[serde(default)]
    pub distinct: bool,
}

/// `EventRelatedFilter`: some related resource meets every given criterion (and has a role
/// other than `""` when `role` is not given).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelatedFilter {
    /// Its id is one of these.
    #[serde(default)]
    pub id: Option<Vec<String>>,
    /// Its role is one of these.
    #[serde(default)]
    pub role: Option<Vec<String>>,
    /// Its `(id, role)` is one of these.
    #[serde(default)]
    pub resources_in_roles: Option<Vec<(String, String)>>,
    /// It has these labels.
    #[serde(default)]
    pub labels: Option<Labels>,
}

/// `EventAnyResourceFilter`: the primary or a related resource meets every given criterion.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnyResourceFilter {
    /// Its id is one of these.
    #[serde(default)]
    pub id: Option<Vec<String>>,
    /// Its id starts with one of these.
    #[serde(default)]
    pub id_prefix: Option<Vec<String>>,
    /// It has these labels.
    #[serde(default)]
    pub labels: Option<Labels>,
}

/// `EventIDFilter`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdFilter {
    /// The event id is one of these.
    #[serde(default)]
    pub id: Option<Vec<Uuid>>,
}

/// `EventTextFilter`: Prefect's text search syntax ([`TextQuery`]) over the event name, the
/// label values of every resource and the payload as JSON, case-insensitive. At most 200
/// characters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventTextFilter {
    /// The query.
    pub query: String,
}

/// One or several filters of a kind (several are ANDed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrList<T> {
    /// One.
    One(T),
    /// Several, all of which must pass.
    List(Vec<T>),
}

impl<T> OneOrList<T> {
    fn all(&self, f: impl Fn(&T) -> bool) -> bool {
        match self {
            Self::One(t) => f(t),
            Self::List(v) => v.iter().all(f),
        }
    }
}

/// `EventOrder`; Prefect's default is `DESC`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventOrder {
    /// Oldest first.
    #[serde(rename = "ASC")]
    Asc,
    /// Newest first.
    #[default]
    #[serde(rename = "DESC")]
    Desc,
}

/// Prefect's `EventFilter`: every given criterion must pass. Unknown keys are refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventFilter {
    /// When.
    #[serde(default)]
    pub occurred: OccurredFilter,
    /// The name.
    #[serde(default)]
    pub event: Option<NameFilter>,
    /// The primary resource.
    #[serde(default)]
    pub resource: Option<ResourceFilter>,
    /// Related resources.
    #[serde(default)]
    pub related: Option<OneOrList<RelatedFilter>>,
    /// Any resource.
    #[serde(default)]
    pub any_resource: Option<OneOrList<AnyResourceFilter>>,
    /// The event id.
    #[serde(default)]
    pub id: IdFilter,
    /// Text search.
    #[serde(default)]
    pub text: Option<EventTextFilter>,
    /// Order of the answer.
    #[serde(default)]
    pub order: EventOrder,
}

/// The longest text search query Prefect accepts, in characters.
pub const MAX_EVENT_TEXT_CHARS: usize = 200;

fn any_of(list: Option<&Vec<String>>, f: impl Fn(&str) -> bool) -> bool {
    list.is_none_or(|l| l.is_empty() || l.iter().any(|s| f(s)))
}

impl EventFilter {
    /// Fixes the absent `occurred` bounds to Prefect's defaults at `now`.
    pub fn resolve(&mut self, now: DateTime<Utc>) {
        if self.occurred.since.is_none() {
            let start_of_day = now
                .date_naive()
                .and_hms_opt(0, 0, 0)
                .map_or(now, |d| d.and_utc());
            self.occurred.since = Some(start_of_day - Duration::days(180));
        }
        if self.occurred.until.is_none() {
            self.occurred.until = Some(now);
        }
    }

    /// Checks the bounds Prefect puts on a filter.
    ///
    /// # Errors
    /// A sentence naming the field.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(t) = &self.text
            && t.query.chars().count() > MAX_EVENT_TEXT_CHARS
        {
            return Err(format!(
                "filter.text.query: String should have at most {MAX_EVENT_TEXT_CHARS} characters"
            ));
        }
        Ok(())
    }

    /// Whether `event` passes (`distinct` aside: see [`EventFilter::finish`]).
    pub fn matches(&self, event: &Event) -> bool {
        if self.occurred.since.is_some_and(|s| event.occurred < s)
            || self.occurred.until.is_some_and(|u| event.occurred > u)
        {
            return false;
        }
        if let Some(f) = &self.event {
            let name = event.event.as_str();
            if !any_of(f.prefix.as_ref(), |p| name.starts_with(p))
                || f.exclude_prefix
                    .as_ref()
                    .is_some_and(|l| l.iter().any(|p| name.starts_with(p.as_str())))
                || !any_of(f.name.as_ref(), |n| n == name)
                || f.exclude_name
                    .as_ref()
                    .is_some_and(|l| l.iter().any(|n| n == name))
            {
                return false;
            }
        }
        if let Some(f) = &self.resource {
            let id = event.resource_id();
            if !any_of(f.id.as_ref(), |i| i == id)
                || !any_of(f.id_prefix.as_ref(), |p| id.starts_with(p))
                || f.labels
                    .as_ref()
                    .is_some_and(|l| !l.matches(&event.resource, ""))
            {
                return false;
            }
        }
        if let Some(f) = &self.related
            && !f.all(|f| related_matches(f, event))
        {
            return false;
        }
        if let Some(f) = &self.any_resource
            && !f.all(|f| any_resource_matches(f, event))
        {
            return false;
        }
        if let Some(ids) = &self.id.id
            && !ids.is_empty()
            && !ids.contains(&event.id)
        {
            return false;
        }
        if let Some(t) = &self.text
            && !t.query.trim().is_empty()
        {
            let q = TextQuery::parse(&t.query);
            let mut text = event.event.clone();
            for r in std::iter::once(&event.resource).chain(&event.related) {
                for v in r.values() {
                    text.push(' ');
                    text.push_str(v);
                }
            }
            text.push(' ');
            text.push_str(&Value::Object(event.payload.clone()).to_string());
            let text = text.to_lowercase();
            let has = |t: &String| text.contains(&t.to_lowercase());
            if (!q.include.is_empty() && !q.include.iter().any(has))
                || q.exclude.iter().any(has)
                || !q.required.iter().all(has)
            {
                return false;
            }
        }
        true
    }

    /// Orders passing `events` by this filter's order (`occurred`, then id) and keeps the
    /// first of each resource when `resource.distinct`.
    pub fn finish(&self, mut events: Vec<Event>) -> Vec<Event> {
        events.sort_by(|a, b| {
            let o = (a.occurred, a.id).cmp(&(b.occurred, b.id));
            match self.order {
                EventOrder::Asc => o,
                EventOrder::Desc => o.reverse(),
            }
        });
        if self.resource.as_ref().is_some_and(|r| r.distinct) {
            let mut seen = std::collections::HashSet::new();
            events.retain(|e| seen.insert(e.resource_id().to_owned()));
        }
        events
    }
}

fn role_of(r: &Resource) -> &str {
    r.get(RESOURCE_ROLE).map_or("", String::as_str)
}

fn related_matches(f: &RelatedFilter, event: &Event) -> bool {
    let any =
        f.id.is_some() || f.role.is_some() || f.resources_in_roles.is_some() || f.labels.is_some();
    if !any {
        return true;
    }
    event.related.iter().any(|r| {
        let id = r.get(RESOURCE_ID).map_or("", String::as_str);
        let role = role_of(r);
        f.id.as_ref().is_none_or(|l| l.iter().any(|i| i == id))
            && f.role.as_ref().is_none_or(|l| l.iter().any(|x| x == role))
            && f.resources_in_roles
                .as_ref()
                .is_none_or(|l| l.iter().any(|(i, x)| i == id && x == role))
            && f.labels.as_ref().is_none_or(|l| l.matches(r, role))
            && (f.role.is_some() || !role.is_empty())
    })
}

fn any_resource_matches(f: &AnyResourceFilter, event: &Event) -> bool {
    std::iter::once(&event.resource)
        .chain(&event.related)
        .any(|r| {
            let id = r.get(RESOURCE_ID).map_or("", String::as_str);
            any_of(f.id.as_ref(), |i| i == id)
                && any_of(f.id_prefix.as_ref(), |p| id.starts_with(p))
                && f.labels.as_ref().is_none_or(|l| l.matches(r, role_of(r)))
        })
}

/// The names of the resources related to a flow run's events that pushpool knows without
/// reading other records: the flow's, the deployment's (when it has one) and the work pool's
/// type. `None` where unknown: that resource then carries only its id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlowRunContext {
    /// The flow's name.
    pub flow_name: Option<String>,
    /// The deployment's name.
    pub deployment_name: Option<String>,
    /// The work pool's type.
    pub work_pool_type: Option<String>,
}

fn state_payload(state: Option<&State>) -> Value {
    match state {
        None => Value::Null,
        Some(s) => {
            let mut m = Map::new();
            m.insert("type".into(), Value::String(s.r#type.as_str().to_owned()));
            m.insert("name".into(), Value::String(s.name.clone()));
            if let Some(msg) = s.message.as_deref().filter(|m| !m.is_empty()) {
                m.insert("message".into(), Value::String(msg.to_owned()));
            }
            m.insert(
                "timestamp".into(),
                Value::String(
                    s.timestamp
                        .to_rfc3339_opts(chrono::SecondsFormat::Micros, false),
                ),
            );
            Value::Object(m)
        }
    }
}

fn related(id: String, role: &str, name: Option<&str>) -> Resource {
    let mut r = Resource::new();
    r.insert(RESOURCE_ID.into(), id);
    r.insert(RESOURCE_ROLE.into(), role.into());
    if let Some(n) = name {
        r.insert("prefect.resource.name".into(), n.into());
    }
    r
}

/// Prefect's `flow_run_state_change_event`: the event of `run` (as written, in its new
/// state `to`) leaving `from`. Name `prefect.flow-run.<state name>`; resource
/// `prefect.flow-run.<id>` with the run's name, run count and the new state's name, type,
/// message and timestamp; related: the flow, deployment, work queue, work pool and tags
/// (`prefect.tag.<tag>`, role `tag`); payload `intended.from/to` (state types),
/// `initial_state`, `validated_state`. The event id is the new state's id, as Prefect's;
/// `follows` is the old state's id when the two are less than five minutes apart.
pub fn flow_run_state_change_event(
    run: &FlowRun,
    from: Option<&State>,
    to: &State,
    ctx: &FlowRunContext,
    received: DateTime<Utc>,
) -> Event {
    let mut resource = Resource::new();
    resource.insert(RESOURCE_ID.into(), format!("prefect.flow-run.{}", run.id));
    resource.insert("prefect.resource.name".into(), run.name.clone());
    resource.insert("prefect.run-count".into(), run.run_count.to_string());
    resource.insert(
        "prefect.state-message".into(),
        to.message.clone().unwrap_or_default(),
    );
    resource.insert("prefect.state-name".into(), to.name.clone());
    resource.insert(
        "prefect.state-timestamp".into(),
        to.timestamp
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, false),
    );
    resource.insert("prefect.state-type".into(), to.r#type.as_str().to_owned());
    let mut rel = vec![related(
        format!("prefect.flow.{}", run.flow_id),
        "flow",
        ctx.flow_name.as_deref(),
    )];
    if let Some(d) = run.deployment_id {
        rel.push(related(
            format!("prefect.deployment.{d}"),
            "deployment",
            ctx.deployment_name.as_deref(),
        ));
    }
    if let Some(q) = run.work_queue_id {
        rel.push(related(
            format!("prefect.work-queue.{q}"),
            "work-queue",
            run.work_queue_name.as_deref(),
        ));
    }
    if let Some(p) = run.work_pool_id {
        let mut r = related(
            format!("prefect.work-pool.{p}"),
            "work-pool",
            run.work_pool_name.as_deref(),
        );
        if let Some(t) = &ctx.work_pool_type {
            r.insert("prefect.work-pool.type".into(), t.clone());
        }
        rel.push(r);
    }
    for tag in &run.tags {
        rel.push(related(format!("prefect.tag.{tag}"), "tag", None));
    }
    let mut intended = Map::new();
    intended.insert(
        "from".into(),
        from.map_or(Value::Null, |s| Value::String(s.r#type.as_str().into())),
    );
    intended.insert("to".into(), Value::String(to.r#type.as_str().into()));
    let mut payload = Map::new();
    payload.insert("intended".into(), Value::Object(intended));
    payload.insert("initial_state".into(), state_payload(from));
    payload.insert("validated_state".into(), state_payload(Some(to)));
    let follows = from
        .filter(|f| (to.timestamp - f.timestamp).abs() < Duration::minutes(5))
        .map(|f| f.id);
    Event {
        occurred: to.timestamp,
        event: format!("prefect.flow-run.{}", to.name),
        resource,
        related: rel,
        payload,
        id: to.id,
        follows,
        received,
    }
}

/// What `/events/count-by/{countable}` counts (Prefect's `Countable`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Countable {
    /// Days (`time` with one-day buckets).
    Day,
    /// Time buckets of `time_unit` × `time_interval`.
    Time,
    /// Event names.
    Event,
    /// Primary resource ids.
    Resource,
}

/// Prefect's `TimeUnit`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeUnit {
    /// Seven days.
    Week,
    /// One day (the default).
    #[default]
    Day,
    /// One hour.
    Hour,
    /// One minute.
    Minute,
    /// One second.
    Second,
}

impl TimeUnit {
    fn seconds(self) -> f64 {
        match self {
            Self::Week => 7.0 * 86_400.0,
            Self::Day => 86_400.0,
            Self::Hour => 3_600.0,
            Self::Minute => 60.0,
            Self::Second => 1.0,
        }
    }

    /// The last microsecond of the unit `t` is in (weeks end on Sunday).
    fn end_of_period(self, t: DateTime<Utc>) -> DateTime<Utc> {
        use chrono::{Datelike, Timelike};
        let micro = Duration::microseconds(1);
        let sec = t.with_nanosecond(0).unwrap_or(t);
        match self {
            Self::Second => sec + Duration::seconds(1) - micro,
            Self::Minute => sec.with_second(0).unwrap_or(sec) + Duration::minutes(1) - micro,
            Self::Hour => {
                let h = sec
                    .with_second(0)
                    .and_then(|x| x.with_minute(0))
                    .unwrap_or(sec);
                h + Duration::hours(1) - micro
            }
            Self::Day | Self::Week => {
                let d = t
                    .date_naive()
                    .and_hms_opt(0, 0, 0)
                    .map_or(t, |d| d.and_utc());
                let days = if self == Self::Week {
                    7 - i64::from(t.weekday().num_days_from_monday())
                } else {
                    1
                };
                d + Duration::days(days) - micro
            }
        }
    }
}

/// One count (Prefect's `EventCount`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventCount {
    /// What is counted: the bucket's index among the answer's buckets, the event name or
    /// the resource id.
    pub value: String,
    /// Its label: the bucket's start (ISO 8601), the event name, or the resource's name
    /// (`prefect.resource.name`, else `prefect.name`, else its id) as of its latest event.
    pub label: String,
    /// How many events.
    pub count: u64,
    /// The bucket's start, or the oldest event's time.
    pub start_time: DateTime<Utc>,
    /// The bucket's end, or the latest event's time.
    pub end_time: DateTime<Utc>,
}

/// Where Prefect's time buckets start: 2024-04-01T00:00:00Z.
fn pivot() -> DateTime<Utc> {
    DateTime::from_timestamp(1_711_929_600, 0).unwrap_or_default()
}

/// Prefect's `count_events`: counts `events` (which passed `filter`, whose `occurred`
/// bounds are set) by `countable`. Time counts have one entry per bucket from the one of
/// `since` to the one of `until` (or of the end of the current unit, when `until` is
/// later than `now`), zero counts included, oldest first; the others are ordered by count
/// (largest first), then label.
///
/// # Errors
/// Prefect's messages: an interval under 0.01, or more than 1000 buckets.
pub fn count_events(
    events: &[Event],
    filter: &EventFilter,
    countable: Countable,
    unit: TimeUnit,
    interval: f64,
    now: DateTime<Utc>,
) -> Result<Vec<EventCount>, String> {
    let since = filter.occurred.since.unwrap_or(now);
    let until = filter.occurred.until.unwrap_or(now);
    let (unit, interval) = if countable == Countable::Day {
        (TimeUnit::Day, 1.0)
    } else {
        (unit, interval)
    };
    if interval < 0.01 {
        return Err("The minimum interval is 0.01".into());
    }
    let delta_us = unit.seconds() * interval * 1e6;
    // A bucket must fit in a date (chrono's range is about ±262,000 years): refuse one
    // longer than 10^18 µs (about 31,700 years) rather than overflow placing it.
    if !delta_us.is_finite() || delta_us > 1e18 {
        return Err(format!(
            "time_interval: {interval} × {} s is longer than the 31,700 years a bucket may span",
            unit.seconds()
        ));
    }
    let us = |d: Duration| d.num_microseconds().unwrap_or(i64::MAX) as f64;
    let buckets = (us(until - since) / delta_us).ceil();
    if buckets > 1000.0 {
        return Err(format!(
            "The given interval would create {buckets} buckets, which is too many. Please \
             increase the interval or reduce the time range to produce 1000 buckets or fewer."
        ));
    }
    match countable {
        Countable::Day | Countable::Time => {
            let end = if until > now {
                unit.end_of_period(now)
            } else {
                until
            };
            let index = |t: DateTime<Utc>| (us(t - pivot()) / delta_us).floor() as i64;
            let first = index(since);
            let at = |i: i64| pivot() + Duration::microseconds((delta_us * i as f64) as i64);
            let mut out = Vec::new();
            let mut i = first;
            while at(i) < end && out.len() <= 1000 {
                let start = at(i);
                out.push(EventCount {
                    value: (i - first).to_string(),
                    label: start.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false),
                    count: 0,
                    start_time: start,
                    end_time: at(i + 1) - Duration::microseconds(1),
                });
                i += 1;
            }
            for e in events {
                if let Some(c) = usize::try_from(index(e.occurred) - first)
                    .ok()
                    .and_then(|k| out.get_mut(k))
                {
                    c.count += 1;
                }
            }
            Ok(out)
        }
        Countable::Event | Countable::Resource => {
            // value → (label as of the latest event, latest, oldest, count)
            let mut groups: BTreeMap<String, (String, DateTime<Utc>, DateTime<Utc>, u64)> =
                BTreeMap::new();
            for e in events {
                let (value, label) = if countable == Countable::Event {
                    (e.event.clone(), e.event.clone())
                } else {
                    let label = e
                        .resource
                        .get("prefect.resource.name")
                        .or_else(|| e.resource.get("prefect.name"))
                        .cloned()
                        .unwrap_or_else(|| e.resource_id().to_owned());
                    (e.resource_id().to_owned(), label)
                };
                let g = groups
                    .entry(value)
                    .or_insert((label.clone(), e.occurred, e.occurred, 0));
                if e.occurred >= g.1 {
                    g.0 = label;
                    g.1 = e.occurred;
                }
                g.2 = g.2.min(e.occurred);
                g.3 += 1;
            }
            let mut out: Vec<EventCount> = groups
                .into_iter()
                .map(|(value, (label, latest, oldest, count))| EventCount {
                    value,
                    label,
                    count,
                    start_time: oldest,
                    end_time: latest,
                })
                .collect();
            out.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.label.cmp(&b.label)));
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &str, resource: &str, rel: &[(&str, &str)]) -> Event {
        let t = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        Event {
            occurred: t,
            event: name.into(),
            resource: [(RESOURCE_ID.to_owned(), resource.to_owned())].into(),
            related: rel
                .iter()
                .map(|(id, role)| related((*id).to_owned(), role, None))
                .collect(),
            payload: Map::new(),
            id: Uuid::nil(),
            follows: None,
            received: t,
        }
    }

    #[test]
    fn globs_match_as_prefects_like() {
        assert!(label_matches(
            "prefect.flow-run.*",
            Some("prefect.flow-run.x")
        ));
        assert!(!label_matches(
            "!prefect.flow-run.*",
            Some("prefect.flow-run.x")
        ));
        assert!(label_matches("a?c", Some("abc")));
        assert!(!label_matches("a?c", Some("ac")));
        assert!(!label_matches("!x", None));
    }

    #[test]
    fn criteria_follow_prefects_sql() {
        let e = event(
            "prefect.flow-run.Running",
            "prefect.flow-run.1",
            &[("prefect.flow.2", "flow"), ("prefect.tag.a", "tag")],
        );
        let f: EventFilter = serde_json::from_value(serde_json::json!({
            "event": {"prefix": ["prefect.flow-run."], "exclude_name": ["prefect.flow-run.Pending"]},
            "resource": {"labels": {"prefect.resource.id": "prefect.flow-run.*"}},
            "related": [{"role": ["flow"]}, {"resources_in_roles": [["prefect.tag.a", "tag"]]}],
            "any_resource": {"id_prefix": ["prefect.flow."]},
            "text": {"query": "running -failed"}
        }))
        .unwrap();
        assert!(f.matches(&e));
        let related_id_of_primary: EventFilter =
            serde_json::from_value(serde_json::json!({"related": {"id": ["prefect.flow-run.1"]}}))
                .unwrap();
        assert!(!related_id_of_primary.matches(&e));
        let excluded: EventFilter = serde_json::from_value(
            serde_json::json!({"event": {"exclude_prefix": ["prefect.flow-run"]}}),
        )
        .unwrap();
        assert!(!excluded.matches(&e));
        assert!(
            serde_json::from_value::<EventFilter>(serde_json::json!({"nope": 1})).is_err(),
            "unknown keys are refused"
        );
    }

    #[test]
    fn counts_fill_time_buckets_and_rank_names() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let mut a = event("prefect.flow-run.Running", "prefect.flow-run.1", &[]);
        a.occurred = at("2026-01-02T05:00:00Z");
        let mut b = event("prefect.flow-run.Pending", "prefect.flow-run.1", &[]);
        b.occurred = at("2026-01-02T06:00:00Z");
        let mut c = event("prefect.flow-run.Running", "prefect.flow-run.2", &[]);
        c.occurred = at("2026-01-03T01:00:00Z");
        let events = [a, b, c];
        let filter = EventFilter {
            occurred: OccurredFilter {
                since: Some(at("2026-01-01T12:00:00Z")),
                until: Some(at("2026-01-03T12:00:00Z")),
            },
            ..EventFilter::default()
        };
        let now = at("2026-02-01T00:00:00Z");
        // The fuzzer's interval: a 422 naming it, not an overflow.
        let huge = count_events(
            &events,
            &filter,
            Countable::Time,
            TimeUnit::Second,
            f64::MAX,
            now,
        )
        .unwrap_err();
        assert!(huge.starts_with("time_interval: "), "{huge}");
        let days =
            count_events(&events, &filter, Countable::Day, TimeUnit::Hour, 3.0, now).unwrap();
        let got: Vec<(String, String, u64)> = days
            .iter()
            .map(|c| (c.value.clone(), c.label.clone(), c.count))
            .collect();
        assert_eq!(
            got,
            vec![
                ("0".into(), "2026-01-01T00:00:00+00:00".into(), 0),
                ("1".into(), "2026-01-02T00:00:00+00:00".into(), 2),
                ("2".into(), "2026-01-03T00:00:00+00:00".into(), 1),
            ]
        );
        assert_eq!(days[0].end_time, at("2026-01-01T23:59:59.999999Z"));
        let names =
            count_events(&events, &filter, Countable::Event, TimeUnit::Day, 1.0, now).unwrap();
        let got: Vec<(String, u64)> = names.iter().map(|c| (c.value.clone(), c.count)).collect();
        assert_eq!(
            got,
            vec![
                ("prefect.flow-run.Running".into(), 2),
                ("prefect.flow-run.Pending".into(), 1)
            ]
        );
        assert_eq!(names[0].start_time, at("2026-01-02T05:00:00Z"));
        assert_eq!(names[0].end_time, at("2026-01-03T01:00:00Z"));
        assert_eq!(
            count_events(
                &events,
                &filter,
                Countable::Time,
                TimeUnit::Second,
                1.0,
                now
            )
            .unwrap_err(),
            "The given interval would create 172800 buckets, which is too many. Please \
             increase the interval or reduce the time range to produce 1000 buckets or fewer."
        );
    }
}
