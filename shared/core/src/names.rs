//! Flow run names in Prefect's style: `adjective-animal` (`elegant-caribou`).

use rand::seq::IndexedRandom;

const ADJECTIVES: &[&str] = &[
    "agile", "amber", "bold", "brave", "bright", "calm", "clever", "cosmic", "crimson", "daring",
    "eager", "elegant", "fancy", "fearless", "gentle", "golden", "happy", "hidden", "jolly",
    "keen", "lively", "lucky", "mellow", "nimble", "noble", "olive", "proud", "quick", "quiet",
    "rapid", "rustic", "silver", "smart", "steady", "sturdy", "swift", "tidy", "vivid", "witty",
    "zealous",
];

const ANIMALS: &[&str] = &[
    "albatross",
    "antelope",
    "badger",
    "beaver",
    "bison",
    "caribou",
    "cheetah",
    "crane",
    "dolphin",
    "eagle",
    "falcon",
    "ferret",
    "gazelle",
    "gecko",
    "heron",
    "ibis",
    "jaguar",
    "kestrel",
    "koala",
    "lemur",
    "lynx",
    "marmot",
    "meerkat",
    "narwhal",
    "ocelot",
    "otter",
    "panda",
    "pelican",
    "puffin",
    "quail",
    "raven",
    "salmon",
    "seal",
    "tapir",
    "toucan",
    "walrus",
    "wombat",
    "yak",
    "zebra",
    "orca",
];

/// A random `adjective-animal` name.
pub fn flow_run_name() -> String {
    let mut rng = rand::rng();
    format!(
        "{}-{}",
        ADJECTIVES.choose(&mut rng).copied().unwrap_or("quiet"),
        ANIMALS.choose(&mut rng).copied().unwrap_or("otter")
    )
}
