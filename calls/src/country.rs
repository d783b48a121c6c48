//! Which country an E.164 number belongs to, for the outbound allow-list.
//! Longest matching country calling code (ITU-T E.164 assignments); inside
//! the North American Numbering Plan (+1) the area code decides.

/// Country calling codes to ISO 3166-1 alpha-2, for the codes Bond knows.
const CALLING_CODES: &[(&str, &str)] = &[
    ("7", "RU"),
    ("20", "EG"),
    ("27", "ZA"),
    ("30", "GR"),
    ("31", "NL"),
    ("32", "BE"),
    ("33", "FR"),
    ("34", "ES"),
    ("36", "HU"),
    ("39", "IT"),
    ("40", "RO"),
    ("41", "CH"),
    ("43", "AT"),
    ("44", "GB"),
    ("45", "DK"),
    ("46", "SE"),
    ("47", "NO"),
    ("48", "PL"),
    ("49", "DE"),
    ("51", "PE"),
    ("52", "MX"),
    ("53", "CU"),
    ("54", "AR"),
    ("55", "BR"),
    ("56", "CL"),
    ("57", "CO"),
    ("58", "VE"),
    ("60", "MY"),
    ("61", "AU"),
    ("62", "ID"),
    ("63", "PH"),
    ("64", "NZ"),
    ("65", "SG"),
    ("66", "TH"),
    ("81", "JP"),
    ("82", "KR"),
    ("84", "VN"),
    ("86", "CN"),
    ("90", "TR"),
    ("91", "IN"),
    ("92", "PK"),
    ("93", "AF"),
    ("94", "LK"),
    ("95", "MM"),
    ("98", "IR"),
    ("212", "MA"),
    ("213", "DZ"),
    ("216", "TN"),
    ("218", "LY"),
    ("220", "GM"),
    ("221", "SN"),
    ("225", "CI"),
    ("233", "GH"),
    ("234", "NG"),
    ("237", "CM"),
    ("243", "CD"),
    ("244", "AO"),
    ("249", "SD"),
    ("251", "ET"),
    ("254", "KE"),
    ("255", "TZ"),
    ("256", "UG"),
    ("260", "ZM"),
    ("263", "ZW"),
    ("351", "PT"),
    ("352", "LU"),
    ("353", "IE"),
    ("354", "IS"),
    ("355", "AL"),
    ("356", "MT"),
    ("357", "CY"),
    ("358", "FI"),
    ("359", "BG"),
    ("370", "LT"),
    ("371", "LV"),
    ("372", "EE"),
    ("373", "MD"),
    ("374", "AM"),
    ("375", "BY"),
    ("376", "AD"),
    ("377", "MC"),
    ("380", "UA"),
    ("381", "RS"),
    ("382", "ME"),
    ("385", "HR"),
    ("386", "SI"),
    ("387", "BA"),
    ("389", "MK"),
    ("420", "CZ"),
    ("421", "SK"),
    ("423", "LI"),
    ("502", "GT"),
    ("503", "SV"),
    ("504", "HN"),
    ("505", "NI"),
    ("506", "CR"),
    ("507", "PA"),
    ("591", "BO"),
    ("593", "EC"),
    ("595", "PY"),
    ("598", "UY"),
    ("852", "HK"),
    ("853", "MO"),
    ("855", "KH"),
    ("880", "BD"),
    ("886", "TW"),
    ("960", "MV"),
    ("961", "LB"),
    ("962", "JO"),
    ("963", "SY"),
    ("964", "IQ"),
    ("965", "KW"),
    ("966", "SA"),
    ("967", "YE"),
    ("968", "OM"),
    ("970", "PS"),
    ("971", "AE"),
    ("972", "IL"),
    ("973", "BH"),
    ("974", "QA"),
    ("975", "BT"),
    ("976", "MN"),
    ("977", "NP"),
    ("992", "TJ"),
    ("993", "TM"),
    ("994", "AZ"),
    ("995", "GE"),
    ("996", "KG"),
    ("998", "UZ"),
];

/// NANP area codes outside the United States.
const NANP_AREAS: &[(&str, &str)] = &[
    ("204", "CA"),
    ("226", "CA"),
    ("236", "CA"),
    ("249", "CA"),
    ("250", "CA"),
    ("263", "CA"),
    ("289", "CA"),
    ("306", "CA"),
    ("343", "CA"),
    ("354", "CA"),
    ("365", "CA"),
    ("367", "CA"),
    ("368", "CA"),
    ("382", "CA"),
    ("403", "CA"),
    ("416", "CA"),
    ("418", "CA"),
    ("428", "CA"),
    ("431", "CA"),
    ("437", "CA"),
    ("438", "CA"),
    ("450", "CA"),
    ("468", "CA"),
    ("474", "CA"),
    ("506", "CA"),
    ("514", "CA"),
    ("519", "CA"),
    ("548", "CA"),
    ("579", "CA"),
    ("581", "CA"),
    ("584", "CA"),
    ("587", "CA"),
    ("604", "CA"),
    ("613", "CA"),
    ("639", "CA"),
    ("647", "CA"),
    ("672", "CA"),
    ("683", "CA"),
    ("705", "CA"),
    ("709", "CA"),
    ("742", "CA"),
    ("753", "CA"),
    ("778", "CA"),
    ("780", "CA"),
    ("782", "CA"),
    ("807", "CA"),
    ("819", "CA"),
    ("825", "CA"),
    ("867", "CA"),
    ("873", "CA"),
    ("879", "CA"),
    ("902", "CA"),
    ("905", "CA"),
    ("242", "BS"),
    ("246", "BB"),
    ("264", "AI"),
    ("268", "AG"),
    ("284", "VG"),
    ("340", "VI"),
    ("345", "KY"),
    ("441", "BM"),
    ("473", "GD"),
    ("649", "TC"),
    ("658", "JM"),
    ("876", "JM"),
    ("664", "MS"),
    ("670", "MP"),
    ("671", "GU"),
    ("684", "AS"),
    ("721", "SX"),
    ("758", "LC"),
    ("767", "DM"),
    ("784", "VC"),
    ("787", "PR"),
    ("939", "PR"),
    ("809", "DO"),
    ("829", "DO"),
    ("849", "DO"),
    ("868", "TT"),
    ("869", "KN"),
];

/// Whether E.164 `number` is in one of the `allowed` countries (ISO codes):
/// an organization's `outbound_countries`. A number whose country Bond does
/// not know is in none.
pub fn in_countries(number: &str, allowed: &[String]) -> bool {
    country_of(number).is_some_and(|c| allowed.iter().any(|a| a == c))
}

/// The ISO country of an E.164 number (`+` and digits), when Bond knows its code.
pub fn country_of(e164: &str) -> Option<&'static str> {
    let digits = e164.strip_prefix('+')?;
    if let Some(national) = digits.strip_prefix('1') {
        let area = national.get(..3)?;
        return Some(NANP_AREAS.iter().find(|(a, _)| *a == area).map_or("US", |(_, c)| c));
    }
    CALLING_CODES
        .iter()
        .filter(|(code, _)| digits.starts_with(code))
        .max_by_key(|(code, _)| code.len())
        .map(|(_, country)| *country)
}

/// Whether `code` is a country Bond can recognise.
pub fn is_known_country(code: &str) -> bool {
    code == "US" || CALLING_CODES.iter().chain(NANP_AREAS).any(|(_, c)| *c == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_countries_by_longest_code_and_nanp_area() {
        assert_eq!(country_of("+13125550100"), Some("US"));
        assert_eq!(country_of("+14165550100"), Some("CA"));
        assert_eq!(country_of("+18765550100"), Some("JM"));
        assert_eq!(country_of("+442071234567"), Some("GB"));
        assert_eq!(country_of("+35312345678"), Some("IE"), "353 beats 35");
        assert_eq!(country_of("+74951234567"), Some("RU"));
        assert_eq!(country_of("+999123"), None);
        assert_eq!(country_of("13125550100"), None);
    }

    #[test]
    fn knows_its_countries() {
        assert!(is_known_country("DE") && is_known_country("US") && is_known_country("PR"));
        assert!(!is_known_country("XX"));
    }
}
