//! Observers of the host loop: decision output (text or JSON lines).

use drctl_plugin_api::messages::{Input, Output};
use drctl_policy::{Decision, Engine, Event, Timestamp};
use serde::Serialize;
use std::io::Write;

/// Sees what passes through the host loop.
pub trait Observer {
    /// A command is sent to the backend.
    fn command(&mut self, _t: Timestamp, _input: &Input) {}
    /// The backend produced an output.
    fn output(&mut self, _t: Timestamp, _output: &Output) {}
    /// The engine decided something.
    fn decision(&mut self, _t: Timestamp, _agent: &str, _decision: &Decision) {}
    /// Everything due at `t` has been handled; `agent`'s engine ran since
    /// the last call (the host calls this only for agents whose engine ran).
    fn settled(&mut self, _t: Timestamp, _agent: &str, _engine: &Engine) {}
    /// `agent`'s alarms up once everything due at `t` is handled, raised by
    /// its engine or the host alike (the set `status` shows); called with
    /// [`Observer::settled`].
    fn alarms(&mut self, _t: Timestamp, _agent: &str, _active: &[drctl_policy::Alarm]) {}
    /// `agent`'s engine is about to handle the timers due at `t` (`engine`
    /// as it is before).
    fn timeout(&mut self, _t: Timestamp, _agent: &str, _engine: &Engine) {}
    /// The host itself fed the engine an event (start, operator switch, pause, shutdown).
    fn input(&mut self, _t: Timestamp, _event: &Event) {}
    /// [`Observer::input`] naming whose engine: `Some(session)` for one
    /// agent, `None` for every agent (a fleet's start and stop). A fleet
    /// recording keeps it; the others need only [`Observer::input`].
    fn input_for(&mut self, t: Timestamp, _agent: Option<&str>, event: &Event) {
        self.input(t, event)
    }
    /// `agent`'s switchover gates ran (just before their verdict is fed).
    fn gates(&mut self, _t: Timestamp, _agent: &str, _outcomes: &[crate::gates::Outcome]) {}
    /// The operator's reason (`--reason`, and who asked) for `agent`'s next
    /// operator switchover, or `None` when it is over.
    fn operator(&mut self, _agent: &str, _why: Option<&str>, _by: Option<&str>) {}
    /// The watcher acted for an operator (a schedule, a wave plan) on
    /// `agent`'s behalf: `why` the operator's reason, `by` who asked.
    fn note(
        &mut self,
        _t: Timestamp,
        _agent: &str,
        _note: &crate::report::Note,
        _why: Option<&str>,
        _by: Option<&str>,
    ) {
    }
    /// When the observer wants [`Observer::on_deadline`] (a shadow engine's
    /// timers); the host wakes for it as for the engines' own.
    fn deadline(&self) -> Option<Timestamp> {
        None
    }
    /// Its deadline passed: `t` is now, before the engines' timers at `t`.
    fn on_deadline(&mut self, _t: Timestamp) {}
    /// A pass of the loop at `t` is over: everything due has been handled.
    fn pass_done(&mut self, _t: Timestamp) {}
    /// The session is over: flush what is buffered.
    fn close(&mut self) {}
    /// Whether this observer has finished its job (the host then drops it).
    fn done(&self) -> bool {
        false
    }
    /// An alarm the observer itself raises (a recording that failed): the host
    /// passes it to every observer as an `alarm-raised` decision.
    fn take_alarm(&mut self) -> Option<drctl_policy::Alarm> {
        None
    }
}

/// An observer the caller keeps a handle on (to read its findings after the run).
pub struct Shared<T>(pub std::rc::Rc<std::cell::RefCell<T>>);

impl<T: Observer> Observer for Shared<T> {
    fn command(&mut self, t: Timestamp, input: &Input) {
        self.0.borrow_mut().command(t, input)
    }
    fn output(&mut self, t: Timestamp, output: &Output) {
        self.0.borrow_mut().output(t, output)
    }
    fn decision(&mut self, t: Timestamp, agent: &str, decision: &Decision) {
        self.0.borrow_mut().decision(t, agent, decision)
    }
    fn settled(&mut self, t: Timestamp, agent: &str, engine: &Engine) {
        self.0.borrow_mut().settled(t, agent, engine)
    }
    fn alarms(&mut self, t: Timestamp, agent: &str, active: &[drctl_policy::Alarm]) {
        self.0.borrow_mut().alarms(t, agent, active)
    }
    fn input(&mut self, t: Timestamp, event: &Event) {
        self.0.borrow_mut().input(t, event)
    }
    fn input_for(&mut self, t: Timestamp, agent: Option<&str>, event: &Event) {
        self.0.borrow_mut().input_for(t, agent, event)
    }
    fn gates(&mut self, t: Timestamp, agent: &str, outcomes: &[crate::gates::Outcome]) {
        self.0.borrow_mut().gates(t, agent, outcomes)
    }
    fn operator(&mut self, agent: &str, why: Option<&str>, by: Option<&str>) {
        self.0.borrow_mut().operator(agent, why, by)
    }
    fn timeout(&mut self, t: Timestamp, agent: &str, engine: &Engine) {
        self.0.borrow_mut().timeout(t, agent, engine)
    }
    fn note(
        &mut self,
        t: Timestamp,
        agent: &str,
        note: &crate::report::Note,
        why: Option<&str>,
        by: Option<&str>,
    ) {
        self.0.borrow_mut().note(t, agent, note, why, by)
    }
    fn deadline(&self) -> Option<Timestamp> {
        self.0.borrow().deadline()
    }
    fn on_deadline(&mut self, t: Timestamp) {
        self.0.borrow_mut().on_deadline(t)
    }
    fn pass_done(&mut self, t: Timestamp) {
        self.0.borrow_mut().pass_done(t)
    }
    fn close(&mut self) {
        self.0.borrow_mut().close()
    }
    fn take_alarm(&mut self) -> Option<drctl_policy::Alarm> {
        self.0.borrow_mut().take_alarm()
    }
}

/// A decision record as printed with `--output json` (SPEC §6).
#[derive(Serialize)]
pub struct DecisionRecord<'a> {
    /// Nanoseconds since the session start.
    pub t: u64,
    /// The agent (fleet mode only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<&'a str>,
    /// The decision, flattened: `type` and its fields.
    #[serde(flatten)]
    pub decision: &'a Decision,
}

/// How decisions are printed on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One line a decision, for people.
    Text,
    /// One JSON object a line, exactly the decision records.
    Json,
}

/// Prints decisions to a writer (stdout), and to tracing at debug: stdout
/// already carries them, so a terminal shows each decision once.
pub struct DecisionPrinter<W: Write> {
    out: W,
    format: Format,
    fleet: bool,
    colour: bool,
}

impl<W: Write> DecisionPrinter<W> {
    /// A printer in `format` to `out`, without colours.
    pub fn new(out: W, format: Format) -> Self {
        DecisionPrinter {
            out,
            format,
            fleet: false,
            colour: false,
        }
    }

    /// A printer that names the agent of every decision (fleet mode).
    pub fn with_agents(mut self) -> Self {
        self.fleet = true;
        self
    }

    /// Colours the decision types of text lines (when `out` is a terminal:
    /// see [`crate::logging::colours`]).
    pub fn coloured(mut self, colour: bool) -> Self {
        self.colour = colour;
        self
    }
}

/// Session time as text tables show it: always milliseconds, rounded
/// (`+12.746s`), so that a real-clock time lines up with a virtual one.
pub fn millis(t: Timestamp) -> String {
    let ms = t.as_nanos().saturating_add(500_000) / 1_000_000;
    format!("+{}.{:03}s", ms / 1000, ms % 1000)
}

/// One line for people: `+40.200s  switchover-started  telephony-timeout site1 -> site2`.
pub fn describe(t: Timestamp, d: &Decision) -> String {
    render(t, d, false)
}

/// [`describe`], the decision's type coloured by what it means when `colour`.
pub fn render(t: Timestamp, d: &Decision, colour: bool) -> String {
    let detail = match d {
        Decision::StartupConnected { site } => format!("connected to {site}"),
        Decision::StartupFailed { error } => error.clone(),
        Decision::SwitchoverStarted { reason, from, to }
        | Decision::SwitchoverCompleted { reason, from, to } => {
            format!("{} {from} -> {to}", reason.as_str())
        }
        Decision::SwitchoverFailed { to, error } => format!("{to}: {error}"),
        Decision::SwitchoverSuppressed { reason, why } => {
            format!("{} ({})", reason.as_str(), why.as_str())
        }
        Decision::AlarmRaised {
            alarm,
            deadline: Some(at),
        } => {
            let at = Timestamp::from_nanos(*at);
            format!("{} (switchover at {at})", alarm.as_str())
        }
        Decision::AlarmRaised { alarm, .. } | Decision::AlarmCleared { alarm } => {
            alarm.as_str().to_owned()
        }
        Decision::ApplicationFallback { site, error } => {
            format!("{site}: its AIL Application could not be read ({error}); using [[sites]]")
        }
        Decision::LogoutClassified { reason, class } => {
            let reason = if reason.is_empty() { "(none)" } else { reason };
            format!("reason {reason}: {}", class.as_str())
        }
        Decision::GateRefused {
            reason,
            gate,
            output,
        } => format!("{} by gate {gate}: {output}", reason.as_str()),
        Decision::GateSkipped { reason, gate, why } => {
            format!("{} gate {gate} skipped: {why}", reason.as_str())
        }
    };
    // Reasons and errors are free text from the backend: one line, no
    // terminal controls.
    let detail = crate::logging::escape(&detail);
    let kind = format!("{:<22}", d.type_name());
    let kind = match style(d).filter(|_| colour) {
        Some(style) => format!("{style}{kind}{style:#}"),
        None => kind,
    };
    format!("{:>12}  {kind} {detail}", millis(t))
}

/// The colour of a decision's type: red for trouble, yellow for a switch
/// under way, green for a recovery.
fn style(d: &Decision) -> Option<anstyle::Style> {
    use anstyle::AnsiColor::{Green, Red, Yellow};
    let colour = match d {
        Decision::StartupFailed { .. }
        | Decision::SwitchoverFailed { .. }
        | Decision::AlarmRaised { .. }
        | Decision::GateRefused { .. } => Red,
        Decision::SwitchoverStarted { .. }
        | Decision::SwitchoverSuppressed { .. }
        | Decision::ApplicationFallback { .. }
        | Decision::GateSkipped { .. } => Yellow,
        Decision::StartupConnected { .. }
        | Decision::SwitchoverCompleted { .. }
        | Decision::AlarmCleared { .. } => Green,
        Decision::LogoutClassified { .. } => return None,
    };
    Some(anstyle::Style::new().fg_color(Some(colour.into())))
}

impl<W: Write> Observer for DecisionPrinter<W> {
    fn decision(&mut self, t: Timestamp, agent: &str, d: &Decision) {
        let f = Fields::of(d);
        tracing::debug!(
            target: "drctl::decision",
            t = t.as_nanos(),
            agent = self.fleet.then_some(agent),
            r#type = d.type_name(),
            site = f.site,
            reason = f.reason,
            from = f.from,
            to = f.to,
            alarm = f.alarm,
            class = f.class,
            gate = f.gate,
            why = f.why,
            error = f.error,
            "{}",
            describe(t, d).trim_start()
        );
        let written = match self.format {
            Format::Json => {
                let record = DecisionRecord {
                    t: t.as_nanos(),
                    agent: self.fleet.then_some(agent),
                    decision: d,
                };
                serde_json::to_writer(&mut self.out, &record)
                    .map_err(std::io::Error::from)
                    .and_then(|()| writeln!(self.out))
            }
            Format::Text if self.fleet => {
                let line = render(t, d, self.colour);
                let (time, rest) = line.split_at(12);
                writeln!(self.out, "{time}  {agent:<10} {}", rest.trim_start())
            }
            Format::Text => writeln!(self.out, "{}", render(t, d, self.colour)),
        };
        // stdout closed (a pipe's reader left): nothing useful left to do with it.
        let _ = written.and_then(|()| self.out.flush());
    }
}

/// A decision's fields as log fields (`--log-format json` carries them all).
#[derive(Default)]
struct Fields<'a> {
    site: Option<&'a str>,
    reason: Option<&'a str>,
    from: Option<&'a str>,
    to: Option<&'a str>,
    alarm: Option<&'a str>,
    class: Option<&'a str>,
    gate: Option<&'a str>,
    why: Option<&'a str>,
    error: Option<&'a str>,
}

impl<'a> Fields<'a> {
    fn of(d: &'a Decision) -> Fields<'a> {
        match d {
            Decision::StartupConnected { site } => Fields {
                site: Some(site),
                ..Default::default()
            },
            Decision::StartupFailed { error } => Fields {
                error: Some(error),
                ..Default::default()
            },
            Decision::SwitchoverStarted { reason, from, to }
            | Decision::SwitchoverCompleted { reason, from, to } => Fields {
                reason: Some(reason.as_str()),
                from: Some(from),
                to: Some(to),
                ..Default::default()
            },
            Decision::SwitchoverFailed { to, error } => Fields {
                to: Some(to),
                error: Some(error),
                ..Default::default()
            },
            Decision::SwitchoverSuppressed { reason, why } => Fields {
                reason: Some(reason.as_str()),
                why: Some(why.as_str()),
                ..Default::default()
            },
            Decision::ApplicationFallback { site, error } => Fields {
                site: Some(site),
                error: Some(error),
                ..Default::default()
            },
            Decision::AlarmRaised { alarm, .. } | Decision::AlarmCleared { alarm } => Fields {
                alarm: Some(alarm.as_str()),
                ..Default::default()
            },
            Decision::LogoutClassified { reason, class } => Fields {
                reason: Some(reason),
                class: Some(class.as_str()),
                ..Default::default()
            },
            Decision::GateRefused {
                reason,
                gate,
                output,
            } => Fields {
                reason: Some(reason.as_str()),
                gate: Some(gate),
                error: Some(output),
                ..Default::default()
            },
            Decision::GateSkipped { reason, gate, why } => Fields {
                reason: Some(reason.as_str()),
                gate: Some(gate),
                why: Some(why),
                ..Default::default()
            },
        }
    }
}

/// When each phase of the first operator switchover (a drill) began and
/// ended, as the loop saw it; automatic ones (a startup relocation before
/// the drill) are not the drill's.
#[derive(Debug, Default, Clone)]
pub struct PhaseTimes {
    /// `switchover-started`.
    pub started: Option<Timestamp>,
    /// Where the agent was when it started.
    pub from: Option<String>,
    /// `switchover-completed`, and the site it landed on.
    pub completed: Option<(Timestamp, String)>,
    kill: Span,
    connect: Span,
    subscribe: Span,
    /// EventDNBackInService after completion.
    pub dn_back: Option<Timestamp>,
    /// Telephony ON after completion.
    pub telephony_on: Option<Timestamp>,
    /// The gates run before it, and when they answered.
    pub gates: Vec<crate::gates::Outcome>,
    /// When the gates answered.
    pub gates_at: Option<Timestamp>,
    /// Another switchover started after this one completed (a drill's
    /// return): what follows is not this one's.
    pub superseded: bool,
    /// Why it never started: a gate's veto, e.g. `gate freeze refused the
    /// operator switchover: ...`.
    pub refused: Option<String>,
}

/// A command's send and answer times, matched by id.
#[derive(Debug, Default, Clone)]
struct Span {
    id: Option<u64>,
    sent: Option<Timestamp>,
    done: Option<Timestamp>,
}

impl PhaseTimes {
    /// `(phase, duration)` rows of the timing table.
    pub fn rows(&self) -> Vec<(&'static str, Option<std::time::Duration>)> {
        let span = |s: &Span| Some(s.done? - s.sent?);
        let between = |a: Option<Timestamp>, b: Option<Timestamp>| Some(b? - a?);
        vec![
            ("kill factory", span(&self.kill)),
            ("connect", span(&self.connect)),
            ("listeners", span(&self.subscribe)),
            (
                "DN back in service",
                between(self.subscribe.done, self.dn_back),
            ),
            ("total", between(self.started, self.dn_back)),
        ]
    }

    /// The phases that happened, as `(phase, began, ended)`, in order: for
    /// a drill report's timeline.
    pub fn spans(&self) -> Vec<(&'static str, Timestamp, Timestamp)> {
        let mut out = Vec::new();
        for (name, s) in [
            ("kill factory", &self.kill),
            ("connect", &self.connect),
            ("listeners", &self.subscribe),
        ] {
            if let (Some(a), Some(b)) = (s.sent, s.done) {
                out.push((name, a, b));
            }
        }
        if let (Some(a), Some(b)) = (self.subscribe.done, self.dn_back) {
            out.push(("DN back in service", a, b));
        }
        out
    }

    fn in_flight(&self) -> bool {
        self.started.is_some() && self.completed.is_none()
    }
}

/// Fills a shared [`PhaseTimes`] for `drctl switch`.
pub struct PhaseTimer(pub std::rc::Rc<std::cell::RefCell<PhaseTimes>>);

impl Observer for PhaseTimer {
    fn command(&mut self, t: Timestamp, input: &Input) {
        use drctl_plugin_api::messages::Command;
        let mut p = self.0.borrow_mut();
        if !p.in_flight() {
            return;
        }
        let Input::Command { id, command, .. } = input;
        let span = match command {
            Command::KillFactory => &mut p.kill,
            Command::Connect { .. } => &mut p.connect,
            Command::Subscribe { .. } => &mut p.subscribe,
            _ => return,
        };
        *span = Span {
            id: Some(*id),
            sent: Some(t),
            done: None,
        };
    }

    fn output(&mut self, t: Timestamp, output: &Output) {
        use drctl_plugin_api::messages::{Event, Service, ServiceState};
        let mut guard = self.0.borrow_mut();
        let p = &mut *guard;
        match output {
            Output::Result { id, .. } => {
                for span in [&mut p.kill, &mut p.connect, &mut p.subscribe] {
                    if span.id == Some(*id) && span.done.is_none() {
                        span.done = Some(t);
                    }
                }
            }
            Output::Event { event, .. } if p.completed.is_some() && !p.superseded => match event {
                Event::DnBackInService { .. } if p.dn_back.is_none() => p.dn_back = Some(t),
                Event::ServiceStatus {
                    service: Service::Telephony,
                    status: ServiceState::On,
                } if p.telephony_on.is_none() => p.telephony_on = Some(t),
                _ => {}
            },
            _ => {}
        }
    }

    fn gates(&mut self, t: Timestamp, _agent: &str, outcomes: &[crate::gates::Outcome]) {
        let mut p = self.0.borrow_mut();
        if p.started.is_none() {
            p.gates = outcomes.to_vec();
            p.gates_at = Some(t);
        }
    }

    fn decision(&mut self, t: Timestamp, _agent: &str, d: &Decision) {
        let mut p = self.0.borrow_mut();
        match d {
            Decision::GateRefused {
                reason: drctl_policy::Reason::Operator,
                gate,
                output,
            } if p.started.is_none() => {
                p.refused = Some(format!(
                    "gate {gate} refused the switchover: {}",
                    crate::logging::escape(output)
                ));
            }
            Decision::SwitchoverStarted {
                reason: drctl_policy::Reason::Operator,
                from,
                ..
            } if p.started.is_none() => {
                p.started = Some(t);
                p.from = Some(from.to_string());
            }
            Decision::SwitchoverCompleted { to, .. } if p.in_flight() => {
                p.completed = Some((t, to.to_string()))
            }
            Decision::SwitchoverStarted { .. } if p.completed.is_some() => p.superseded = true,
            _ => {}
        }
    }
}
