//! Per-segment latency of the rules engine with a generated 500-rule ruleset over the 302
//! Harper Valley utterances, against the naive approach (one `Regex` per rule, tried in turn).
//!
//! `cargo bench -p rules` prints p50 / p99 / max per segment in microseconds for both, and
//! their ratio. Each segment is timed on its own; percentiles are over every timed segment of
//! every iteration. `BENCH_ITERS` changes the number of passes over the 15 calls (default 300);
//! `BENCH_NAIVE=0` skips the naive side (to profile the engine alone). `BENCH_JSON=1` adds
//! one JSON line per figure (`{"bench":"rules",...}`) for `bench/report.sh`.
//! Without `--bench` (as under `cargo test --all-targets`) it does nothing.

use std::hint::black_box;
use std::time::Instant;

use domain::event::Speaker;
use domain::ids::{CallId, LanguageTag, SegmentId};
use regex::Regex;
use rules::{Engine, OwnedSegment, Phrase, RuleKind, Ruleset, parse_ruleset};
use serde::Deserialize;
use uuid::Uuid;

const DATA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/harper-valley"
);
const RULES: usize = 500;
/// The share of phrases that are word pairs taken from the calls themselves (and so fire).
/// At 4% a pass over the calls emits about one event per segment; a real ruleset fires less.
const BIGRAM_PERCENT: u64 = 4;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let iters: usize = std::env::var("BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let run_naive = std::env::var("BENCH_NAIVE").map_or(true, |v| v != "0");

    let calls = load_calls();
    let utterances: usize = calls.iter().map(Vec::len).sum();
    let vocabulary = vocabulary(&calls);
    let yaml = generate_ruleset(&vocabulary, &calls);
    let ruleset = parse_ruleset("generated.yaml", &yaml).unwrap_or_else(|e| panic!("{e}"));
    let engine = Engine::compile(&ruleset).unwrap_or_else(|e| panic!("{e}"));
    let naive = Naive::build(&ruleset);
    println!(
        "ruleset: {} rules ({} prohibited, {} required, {} trigger), {} phrase patterns, {} regexes",
        ruleset.rules().len(),
        count(&ruleset, |k| matches!(k, RuleKind::Prohibited { .. })),
        count(&ruleset, |k| matches!(k, RuleKind::Required { .. })),
        count(&ruleset, |k| matches!(k, RuleKind::Trigger { .. })),
        engine.pattern_count(),
        engine.regex_count(),
    );
    println!(
        "corpus: {} calls, {utterances} utterances, {iters} iterations",
        calls.len()
    );

    let language = LanguageTag::parse("en-US").unwrap_or_else(|e| panic!("{e}"));
    let call = CallId::from_uuid(Uuid::from_u128(1)).unwrap_or_else(|e| panic!("{e}"));

    // Warm up both (page in the automaton and the regex caches).
    let mut events = 0usize;
    let mut fired = 0usize;
    for segments in &calls {
        let mut state = engine.new_call(&language);
        for s in segments {
            events += engine.on_segment(&mut state, call, &s.as_input()).len();
            fired += naive.evaluate(&s.text);
        }
    }
    println!("one pass: engine emitted {events} events; naive matched {fired} rule-segments");

    // The engine's passes first, then the naive ones: interleaved, each would evict the
    // other's tables from the caches between segments.
    let e = time_calls(&engine, &language, &calls, iters);
    let mut naive_ns = Vec::with_capacity(iters * utterances);
    for _ in 0..iters {
        for segments in calls.iter().filter(|_| run_naive) {
            for s in segments {
                let t = Instant::now();
                let out = naive.evaluate(black_box(&s.text));
                naive_ns.push(t.elapsed().as_nanos());
                black_box(out);
            }
        }
    }
    println!("engine (one automaton + one RegexSet): {e}");
    e.json("engine-500-rules");
    if run_naive {
        let n = Stats::of(&mut naive_ns);
        println!("naive (500 regexes, one per rule):     {n}");
        n.json("naive-500-rules");
        println!(
            "ratio naive/engine: p50 {:.1}x, p99 {:.1}x, mean {:.1}x",
            n.p50 / e.p50,
            n.p99 / e.p99,
            n.mean / e.mean
        );
    }

    // The default rulesets, for scale: banking over the same calls, and home-services over
    // Arabic and Hindi segments (non-ASCII text takes the Unicode regex set).
    let banking = default_engine("banking.yaml");
    let b = time_calls(&banking, &language, &calls, iters);
    println!("default banking.yaml over the calls:   {b}");
    b.json("banking-en");
    let home = default_engine("home-services.yaml");
    for (tag, lines) in [("ar-AE", ARABIC), ("hi-IN", HINDI)] {
        let language = LanguageTag::parse(tag).unwrap_or_else(|e| panic!("{e}"));
        let segments: Vec<OwnedSegment> = lines
            .iter()
            .enumerate()
            .map(|(i, (agent, text))| {
                let at = 6000 * i as u64;
                OwnedSegment {
                    segment_id: SegmentId::parse(format!("{tag}-{i}"))
                        .unwrap_or_else(|e| panic!("{e}")),
                    speaker: if *agent {
                        Speaker::Agent
                    } else {
                        Speaker::Customer
                    },
                    text: (*text).to_owned(),
                    start_ms: at,
                    end_ms: at + 5000,
                }
            })
            .collect();
        let h = time_calls(&home, &language, &[segments], iters * 20);
        println!("default home-services.yaml, {tag}:     {h}");
        h.json(&format!("home-services-{tag}"));
    }
}

const ARABIC: &[(bool, &str)] = &[
    (
        true,
        "مرحباً بك في نورثويند للتكييف، قد يتم تسجيل هذه المكالمة لأغراض الجودة.",
    ),
    (false, "المكيف لا يبرد منذ أمس والبيت حار جداً."),
    (true, "أضمن لك أن الفني سيصلح المكيف غداً صباحاً."),
    (false, "كم ستكون التكلفة؟ شركة أخرى أعطتني سعراً أقل."),
    (true, "رسوم الفحص تسعة وثمانون درهماً."),
    (false, "أريد إلغاء الموعد من فضلك."),
];

const HINDI: &[(bool, &str)] = &[
    (
        true,
        "नमस्ते, नॉर्थविंड एसी सर्विस में आपका स्वागत है, यह कॉल रिकॉर्ड की जा रही है।",
    ),
    (false, "मेरा एसी कल से ठंडा नहीं कर रहा है।"),
    (true, "मैं गारंटी देता हूँ कि तकनीशियन कल सुबह इसे ठीक कर देगा।"),
    (false, "इसका खर्चा कितना होगा? दूसरी कंपनी ने कम दाम बताया।"),
    (true, "जाँच का शुल्क नवासी रुपये है।"),
    (false, "मुझे अपॉइंटमेंट रद्द करना है।"),
];

fn default_engine(name: &str) -> Engine {
    let path = format!("{}/../../rulesets/{name}", env!("CARGO_MANIFEST_DIR"));
    let yaml = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let ruleset = parse_ruleset(name, &yaml).unwrap_or_else(|e| panic!("{e}"));
    Engine::compile(&ruleset).unwrap_or_else(|e| panic!("{e}"))
}

/// Times every segment of every call, `iters` times over, each call from a fresh state.
fn time_calls(
    engine: &Engine,
    language: &LanguageTag,
    calls: &[Vec<OwnedSegment>],
    iters: usize,
) -> Stats {
    let call = CallId::from_uuid(Uuid::from_u128(2)).unwrap_or_else(|e| panic!("{e}"));
    let mut ns = Vec::new();
    for _ in 0..iters {
        for segments in calls {
            let mut state = engine.new_call(language);
            for s in segments {
                let input = s.as_input();
                let t = Instant::now();
                let out = engine.on_segment(&mut state, call, &input);
                ns.push(t.elapsed().as_nanos());
                black_box(out);
            }
        }
    }
    Stats::of(&mut ns)
}

fn count(r: &Ruleset, f: impl Fn(&RuleKind) -> bool) -> usize {
    r.rules().iter().filter(|rule| f(&rule.kind)).count()
}

struct Stats {
    p50: f64,
    p99: f64,
    max: f64,
    mean: f64,
}

impl Stats {
    fn of(ns: &mut [u128]) -> Stats {
        ns.sort_unstable();
        let us = |v: u128| v as f64 / 1000.0;
        let at = |q: usize| us(ns[(ns.len() * q / 100).min(ns.len() - 1)]);
        Stats {
            p50: at(50),
            p99: at(99),
            max: us(ns[ns.len() - 1]),
            mean: us(ns.iter().sum::<u128>()) / ns.len() as f64,
        }
    }
}

impl Stats {
    /// With `BENCH_JSON=1`, the figures as one JSON line (µs per segment).
    fn json(&self, what: &str) {
        if std::env::var("BENCH_JSON").is_ok_and(|v| v == "1") {
            println!(
                r#"{{"bench":"rules","what":"{what}","p50_us":{:.3},"p99_us":{:.3},"max_us":{:.3},"mean_us":{:.3}}}"#,
                self.p50, self.p99, self.max, self.mean
            );
        }
    }
}

impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "p50 {:.2} µs, p99 {:.2} µs, max {:.2} µs, mean {:.2} µs per segment",
            self.p50, self.p99, self.max, self.mean
        )
    }
}

#[derive(Deserialize)]
struct Utterance {
    index: u64,
    speaker_role: String,
    human_transcript: String,
    start_ms: i64,
    duration_ms: u64,
}

/// All 302 utterances as they are (tags and empty ones included: a live feed sends them too).
fn load_calls() -> Vec<Vec<OwnedSegment>> {
    let sids =
        std::fs::read_to_string(format!("{DATA}/sids.txt")).unwrap_or_else(|e| panic!("{e}"));
    sids.split_whitespace()
        .map(|sid| {
            let json = std::fs::read_to_string(format!("{DATA}/transcript/{sid}.json"))
                .unwrap_or_else(|e| panic!("{e}"));
            let raw: Vec<Utterance> = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}"));
            raw.into_iter()
                .map(|u| {
                    let start = u64::try_from(u.start_ms).unwrap_or(0);
                    OwnedSegment {
                        segment_id: SegmentId::parse(format!("hv-{}", u.index))
                            .unwrap_or_else(|e| panic!("{e}")),
                        speaker: if u.speaker_role == "agent" {
                            Speaker::Agent
                        } else {
                            Speaker::Customer
                        },
                        text: u.human_transcript,
                        start_ms: start,
                        end_ms: start + u.duration_ms,
                    }
                })
                .collect()
        })
        .collect()
}

/// The words of the calls (letters only), and call-center words that the calls lack: rule
/// phrases mix both, as real ones mix everyday words with the distinctive one.
struct Vocabulary {
    common: Vec<String>,
    distinctive: Vec<String>,
}

fn vocabulary(calls: &[Vec<OwnedSegment>]) -> Vocabulary {
    let mut common: Vec<String> = calls
        .iter()
        .flatten()
        .flat_map(|s| s.text.split_whitespace())
        .filter(|w| w.len() > 1 && w.bytes().all(|b| b.is_ascii_lowercase()))
        .map(str::to_owned)
        .collect();
    common.sort();
    common.dedup();
    let distinctive = [
        "guarantee",
        "guaranteed",
        "refund",
        "fees",
        "overdraft",
        "loan",
        "approved",
        "mortgage",
        "cancel",
        "cancellation",
        "fraud",
        "stolen",
        "dispute",
        "interest",
        "rate",
        "score",
        "manager",
        "supervisor",
        "complaint",
        "lawyer",
        "promise",
        "risk",
        "waive",
        "penalty",
        "late",
        "statement",
        "wire",
        "routing",
        "pin",
        "security",
        "verify",
        "identity",
        "birth",
        "social",
        "recorded",
        "quality",
        "warranty",
        "lowest",
        "cheapest",
        "competitor",
        "unauthorized",
        "lawsuit",
        "bankruptcy",
        "foreclosure",
        "collections",
        "garnish",
        "investment",
        "returns",
        "crypto",
        "insurance",
        "premium",
        "deductible",
        "escrow",
    ]
    .iter()
    .map(|w| (*w).to_owned())
    .filter(|w| common.binary_search(w).is_err())
    .collect();
    Vocabulary {
        common,
        distinctive,
    }
}

/// A small deterministic generator: the ruleset is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a>(&mut self, items: &'a [String]) -> &'a str {
        &items[self.below(items.len())]
    }
}

/// 500 rules: 70% prohibited, 10% required (a fifth with a 30 s deadline), 20% triggers; 1-4 phrases each, a third with a
/// `( | )` group, some prefixes; a quarter with exclusions; one in ten with a regex; one in
/// twenty with a proximity clause. `BIGRAM_PERCENT` of the phrases are word pairs that occur
/// in the calls, so rules do fire.
fn generate_ruleset(vocabulary: &Vocabulary, calls: &[Vec<OwnedSegment>]) -> String {
    let bigrams: Vec<String> = calls
        .iter()
        .flatten()
        .flat_map(|s| {
            let words: Vec<&str> = s.text.split_whitespace().collect();
            words
                .windows(2)
                .filter(|w| w.iter().all(|w| w.bytes().all(|b| b.is_ascii_lowercase())))
                .map(|w| w.join(" "))
                .collect::<Vec<_>>()
        })
        .collect();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut y = String::from("id: generated\nversion: 1\nrules:\n");
    let (common, distinctive) = (&vocabulary.common, &vocabulary.distinctive);
    // One distinctive word among one to three everyday ones, sometimes as a `( | )` group or
    // a prefix; or, now and then, a word pair straight from the calls.
    let phrase = |rng: &mut Rng| -> String {
        if rng.chance(BIGRAM_PERCENT) {
            return rng.pick(&bigrams).to_owned();
        }
        let mut words: Vec<String> = (0..rng.below(3))
            .map(|_| rng.pick(common).to_owned())
            .collect();
        let at = rng.below(words.len() + 1);
        // A group offers alternatives of the same sort as the word it replaces.
        let group = rng.chance(33);
        let word = |rng: &mut Rng, pool: &[String]| {
            let first = rng.pick(pool).to_owned();
            if group {
                format!("({first}|{}|{})", rng.pick(pool), rng.pick(pool))
            } else {
                first
            }
        };
        if group && !words.is_empty() && rng.chance(50) {
            let i = rng.below(words.len());
            words[i] = word(rng, common);
            words.insert(at, rng.pick(distinctive).to_owned());
        } else {
            words.insert(at, word(rng, distinctive));
        }
        let mut p = words.join(" ");
        if rng.chance(10) && !p.ends_with(')') {
            p.push('*');
        }
        p
    };
    for i in 0..RULES {
        let kind = match rng.below(10) {
            0 => "required",
            1 | 2 => "trigger",
            _ => "prohibited",
        };
        y.push_str(&format!("  - id: rule-{i}\n    kind: {kind}\n"));
        match kind {
            "prohibited" => {
                let severity = ["info", "warning", "critical"][rng.below(3)];
                y.push_str(&format!(
                    "    severity: {severity}\n    message: Generated prohibited rule {i}.\n    correction: Say it another way.\n"
                ));
                if rng.chance(30) {
                    y.push_str("    cooldown_ms: 30000\n");
                }
            }
            "required" => {
                y.push_str(&format!("    title: Generated checklist item {i}\n"));
                if rng.chance(20) {
                    y.push_str("    deadline:\n      within_ms: 30000\n");
                }
            }
            _ => {
                y.push_str(&format!(
                    "    speaker: any\n    title: Card {i}\n    body: Generated guidance.\n    max_fires: 2\n"
                ));
            }
        }
        y.push_str("    match:\n      phrases:\n");
        for _ in 0..1 + rng.below(4) {
            y.push_str(&format!("        - \"{}\"\n", phrase(&mut rng)));
        }
        if rng.chance(25) {
            y.push_str("      except:\n");
            for _ in 0..1 + rng.below(2) {
                let lead = ["not", "cant", "never", "no"][rng.below(4)];
                y.push_str(&format!("        - \"{lead} {}\"\n", rng.pick(distinctive)));
            }
        }
        if rng.chance(10) {
            let (a, b, c) = (rng.pick(common), rng.pick(common), rng.pick(distinctive));
            y.push_str(&format!(
                "      regex:\n        - '\\b(?:{a}|{b}) (?:\\w+ ){{0,2}}{c}\\b'\n"
            ));
        }
        if rng.chance(5) {
            let (a, b) = (rng.pick(common), rng.pick(distinctive));
            y.push_str(&format!(
                "      near:\n        - {{ a: [\"{a}\"], b: [\"{b}\"], within: 3 }}\n"
            ));
        }
    }
    y
}

/// The approach the engine replaces: one regex per rule over the lower-cased text, tried in
/// turn, with the rule's exclusions as a second regex checked only when the first matches.
struct Naive {
    rules: Vec<(Regex, Option<Regex>)>,
}

impl Naive {
    fn build(ruleset: &Ruleset) -> Naive {
        let alternation = |phrases: &[Phrase]| {
            phrases
                .iter()
                .map(|p| {
                    let words = regex::escape(&p.words).replace(' ', r"\W+");
                    if p.prefix {
                        format!(r"\b{words}")
                    } else {
                        format!(r"\b{words}\b")
                    }
                })
                .collect::<Vec<_>>()
        };
        let rules = ruleset
            .rules()
            .iter()
            .map(|r| {
                let m = &r.matcher;
                let mut parts = alternation(&m.phrases);
                parts.extend(m.regexes.iter().cloned());
                for n in &m.near {
                    for a in alternation(&n.a) {
                        for b in alternation(&n.b) {
                            let gap = format!(r"\W+(?:\w+\W+){{0,{}}}", n.within);
                            parts.push(format!("{a}{gap}{b}|{b}{gap}{a}"));
                        }
                    }
                }
                let positive = Regex::new(&parts.join("|")).unwrap_or_else(|e| panic!("{e}"));
                let except = (!m.except.is_empty()).then(|| {
                    Regex::new(&alternation(&m.except).join("|")).unwrap_or_else(|e| panic!("{e}"))
                });
                (positive, except)
            })
            .collect();
        Naive { rules }
    }

    /// How many rules match `text`.
    fn evaluate(&self, text: &str) -> usize {
        let lower = text.to_lowercase();
        self.rules
            .iter()
            .filter(|(positive, except)| {
                positive.is_match(&lower) && except.as_ref().is_none_or(|e| !e.is_match(&lower))
            })
            .count()
    }
}
