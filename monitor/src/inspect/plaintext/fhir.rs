//! Inspect, plaintext, FHIR and CDA content: the closed list of FHIR R4/R5 resource type names,
//! REST path and body-head probes, the CDA ClinicalDocument root. Must never keep an id, a
//! search parameter or any body value: only names from the list come out.
use super::facts::push_distinct;
use super::scan::find;

/// FHIR R4 and R5 resource type names.
pub(super) const RESOURCES: &[&str] = &[
    "Account",
    "ActivityDefinition",
    "ActorDefinition",
    "AdministrableProductDefinition",
    "AdverseEvent",
    "AllergyIntolerance",
    "Appointment",
    "AppointmentResponse",
    "ArtifactAssessment",
    "AuditEvent",
    "Basic",
    "Binary",
    "BiologicallyDerivedProduct",
    "BiologicallyDerivedProductDispense",
    "BodyStructure",
    "Bundle",
    "CapabilityStatement",
    "CarePlan",
    "CareTeam",
    "CatalogEntry",
    "ChargeItem",
    "ChargeItemDefinition",
    "Citation",
    "Claim",
    "ClaimResponse",
    "ClinicalImpression",
    "ClinicalUseDefinition",
    "CodeSystem",
    "Communication",
    "CommunicationRequest",
    "CompartmentDefinition",
    "Composition",
    "ConceptMap",
    "Condition",
    "ConditionDefinition",
    "Consent",
    "Contract",
    "Coverage",
    "CoverageEligibilityRequest",
    "CoverageEligibilityResponse",
    "DetectedIssue",
    "Device",
    "DeviceDefinition",
    "DeviceDispense",
    "DeviceMetric",
    "DeviceRequest",
    "DeviceUsage",
    "DeviceUseStatement",
    "DiagnosticReport",
    "DocumentManifest",
    "DocumentReference",
    "EffectEvidenceSynthesis",
    "Encounter",
    "EncounterHistory",
    "Endpoint",
    "EnrollmentRequest",
    "EnrollmentResponse",
    "EpisodeOfCare",
    "EventDefinition",
    "Evidence",
    "EvidenceReport",
    "EvidenceVariable",
    "ExampleScenario",
    "ExplanationOfBenefit",
    "FamilyMemberHistory",
    "Flag",
    "FormularyItem",
    "GenomicStudy",
    "Goal",
    "GraphDefinition",
    "Group",
    "GuidanceResponse",
    "HealthcareService",
    "ImagingSelection",
    "ImagingStudy",
    "Immunization",
    "ImmunizationEvaluation",
    "ImmunizationRecommendation",
    "ImplementationGuide",
    "Ingredient",
    "InsurancePlan",
    "InventoryItem",
    "InventoryReport",
    "Invoice",
    "Library",
    "Linkage",
    "List",
    "Location",
    "ManufacturedItemDefinition",
    "Measure",
    "MeasureReport",
    "Media",
    "Medication",
    "MedicationAdministration",
    "MedicationDispense",
    "MedicationKnowledge",
    "MedicationRequest",
    "MedicationStatement",
    "MedicinalProduct",
    "MedicinalProductAuthorization",
    "MedicinalProductContraindication",
    "MedicinalProductDefinition",
    "MedicinalProductIndication",
    "MedicinalProductIngredient",
    "MedicinalProductInteraction",
    "MedicinalProductManufactured",
    "MedicinalProductPackaged",
    "MedicinalProductPharmaceutical",
    "MedicinalProductUndesirableEffect",
    "MessageDefinition",
    "MessageHeader",
    "MolecularSequence",
    "NamingSystem",
    "NutritionIntake",
    "NutritionOrder",
    "NutritionProduct",
    "Observation",
    "ObservationDefinition",
    "OperationDefinition",
    "OperationOutcome",
    "Organization",
    "OrganizationAffiliation",
    "PackagedProductDefinition",
    "Parameters",
    "Patient",
    "PaymentNotice",
    "PaymentReconciliation",
    "Permission",
    "Person",
    "PlanDefinition",
    "Practitioner",
    "PractitionerRole",
    "Procedure",
    "Provenance",
    "Questionnaire",
    "QuestionnaireResponse",
    "RegulatedAuthorization",
    "RelatedPerson",
    "RequestGroup",
    "RequestOrchestration",
    "Requirements",
    "ResearchDefinition",
    "ResearchElementDefinition",
    "ResearchStudy",
    "ResearchSubject",
    "RiskAssessment",
    "RiskEvidenceSynthesis",
    "Schedule",
    "SearchParameter",
    "ServiceRequest",
    "Slot",
    "Specimen",
    "SpecimenDefinition",
    "StructureDefinition",
    "StructureMap",
    "Subscription",
    "SubscriptionStatus",
    "SubscriptionTopic",
    "Substance",
    "SubstanceDefinition",
    "SubstanceNucleicAcid",
    "SubstancePolymer",
    "SubstanceProtein",
    "SubstanceReferenceInformation",
    "SubstanceSourceMaterial",
    "SubstanceSpecification",
    "SupplyDelivery",
    "SupplyRequest",
    "Task",
    "TerminologyCapabilities",
    "TestPlan",
    "TestReport",
    "TestScript",
    "Transport",
    "ValueSet",
    "VerificationResult",
    "VisionPrescription",
];

/// The table's name for `s`, if `s` is exactly a resource type.
pub(super) fn resource(s: &[u8]) -> Option<&'static str> {
    RESOURCES.iter().copied().find(|r| r.as_bytes() == s)
}

/// A FHIR logical id, or an `_history`/`$operation` step.
fn id_like(seg: &[u8]) -> bool {
    (1..=64).contains(&seg.len())
        && seg.iter().all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'$'))
}

/// Resource types named by a FHIR REST path (`/fhir/Patient/123`, `/R4/Observation?code=…`).
pub(super) fn path_resources(path: &[u8], out: &mut Vec<&'static str>) {
    let segs: Vec<&[u8]> = path.split(|&b| b == b'/').take(32).collect();
    for (i, seg) in segs.iter().enumerate() {
        let Some(r) = resource(seg) else { continue };
        // What follows must look like FHIR: nothing, an id, `_history`, `$op`, `_search`.
        let rest = &segs[i + 1..];
        if rest.iter().take(3).all(|s| s.is_empty() || id_like(s)) && rest.len() <= 4 {
            push_distinct(out, r);
        }
    }
}

/// What a body head shows.
#[derive(Default)]
pub(super) struct Body {
    /// A FHIR resource (JSON `resourceType` or an XML root in the FHIR namespace).
    pub fhir: bool,
    /// A CDA `ClinicalDocument` in the urn:hl7-org:v3 namespace.
    pub cda: bool,
}

const HEAD: usize = 4096;

pub(super) fn body(b: &[u8], out: &mut Vec<&'static str>) -> Body {
    let b = &b[..b.len().min(HEAD)];
    let mut r = Body::default();
    // JSON: every "resourceType": "X" (a Bundle's entries too).
    let mut rest = b;
    while let Some(at) = find(rest, b"\"resourceType\"") {
        rest = &rest[at + 14..];
        let v = rest.iter().position(|&c| !matches!(c, b' ' | b'\t' | b'\r' | b'\n' | b':'));
        let Some(v) = v.filter(|&v| rest.get(v) == Some(&b'"') && rest[..v].contains(&b':')) else { continue };
        let name = &rest[v + 1..];
        if let Some(end) = name.iter().take(64).position(|&c| c == b'"') {
            if let Some(t) = resource(&name[..end]) {
                push_distinct(out, t);
                r.fhir = true;
            }
        }
    }
    if let Some((name, tag)) = xml_root(b) {
        if find(tag, b"http://hl7.org/fhir").is_some() {
            if let Some(t) = resource(name) {
                push_distinct(out, t);
                r.fhir = true;
            }
        }
        let local = name.rsplit(|&c| c == b':').next().unwrap_or_default();
        r.cda = local == b"ClinicalDocument" && find(b, b"urn:hl7-org:v3").is_some();
    }
    r
}

/// The root element of an XML head: (qualified name, its start tag).
fn xml_root(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut rest = b;
    loop {
        let lt = rest.iter().position(|&c| c == b'<')?;
        if !rest[..lt].iter().all(|c| c.is_ascii_whitespace() || *c == 0xEF || *c == 0xBB || *c == 0xBF) {
            return None; // text before the root: not an XML document
        }
        rest = &rest[lt..];
        match rest.get(1) {
            Some(b'?') | Some(b'!') => {
                let close = if rest.starts_with(b"<!--") { find(rest, b"-->")? + 3 } else { find(rest, b">")? + 1 };
                rest = &rest[close..];
            }
            _ => break,
        }
    }
    let tag = &rest[..find(rest, b">")?];
    let name_end = tag.iter().skip(1).position(|c| c.is_ascii_whitespace() || *c == b'/').map_or(tag.len(), |p| p + 1);
    Some((&tag[1..name_end], tag))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_the_common_resources_once() {
        assert!(RESOURCES.len() >= 150, "{}", RESOURCES.len());
        for (i, r) in RESOURCES.iter().enumerate() {
            assert!(!RESOURCES[..i].contains(r), "duplicate {r}");
            assert!(r.bytes().all(|b| b.is_ascii_alphabetic()));
        }
        for r in ["Patient", "Observation", "ExplanationOfBenefit", "QuestionnaireResponse", "List", "Media"] {
            assert_eq!(resource(r.as_bytes()), Some(r));
        }
        assert_eq!(resource(b"patient"), None);
    }

    #[test]
    fn paths() {
        let mut v = Vec::new();
        path_resources(b"/fhir/Patient/FAKE-MRN-0001/_history/2", &mut v);
        path_resources(b"/baseR4/Observation", &mut v);
        path_resources(b"/fhir/Patient/$everything", &mut v);
        assert_eq!(v, vec!["Patient", "Observation"]);
        let mut none = Vec::new();
        path_resources(b"/static/img/Media/a/b/c/d/e/logo.png", &mut none);
        path_resources(b"/wiki/Patients", &mut none);
        assert!(none.is_empty());
    }

    #[test]
    fn bodies() {
        let mut v = Vec::new();
        let b = body(br#"{"resourceType" : "Bundle","entry":[{"resource":{"resourceType":"Patient","name":[{"family":"ZZTEST"}]}}, {"resourceType":"NotAType"}]}"#, &mut v);
        assert!(b.fhir && !b.cda);
        assert_eq!(v, vec!["Bundle", "Patient"]);
        let mut v = Vec::new();
        let b = body(b"<?xml version=\"1.0\"?>\n<!-- x --><Observation xmlns=\"http://hl7.org/fhir\"><id value=\"1\"/></Observation>", &mut v);
        assert!(b.fhir);
        assert_eq!(v, vec!["Observation"]);
        let mut v = Vec::new();
        let b = body(b"<?xml version=\"1.0\"?><ClinicalDocument xmlns=\"urn:hl7-org:v3\"><recordTarget/>", &mut v);
        assert!(b.cda && !b.fhir && v.is_empty());
        let b = body(b"<html><body>Patient</body></html>", &mut v);
        assert!(!b.cda && !b.fhir);
    }
}
