//! Inspect, plaintext, DICOM names: a closed table of SOP class UIDs and their PS3.4/PS3.6
//! names. Must never hold anything but standard UIDs and standard names.

pub(super) const VERIFICATION: &str = "1.2.840.10008.1.1";

/// (UID, standard name), UIDs from DICOM PS3.6 Annex A.
pub(super) const SOP_CLASSES: &[(&str, &str)] = &[
    ("1.2.840.10008.1.1", "Verification SOP Class"),
    ("1.2.840.10008.1.20.1", "Storage Commitment Push Model SOP Class"),
    ("1.2.840.10008.3.1.2.3.3", "Modality Performed Procedure Step SOP Class"),
    ("1.2.840.10008.3.1.2.3.4", "Modality Performed Procedure Step Retrieve SOP Class"),
    ("1.2.840.10008.3.1.2.3.5", "Modality Performed Procedure Step Notification SOP Class"),
    ("1.2.840.10008.5.1.1.9", "Basic Grayscale Print Management Meta SOP Class"),
    ("1.2.840.10008.5.1.1.18", "Basic Color Print Management Meta SOP Class"),
    ("1.2.840.10008.5.1.4.1.1.1", "Computed Radiography Image Storage"),
    ("1.2.840.10008.5.1.4.1.1.1.1", "Digital X-Ray Image Storage - For Presentation"),
    ("1.2.840.10008.5.1.4.1.1.1.1.1", "Digital X-Ray Image Storage - For Processing"),
    ("1.2.840.10008.5.1.4.1.1.1.2", "Digital Mammography X-Ray Image Storage - For Presentation"),
    ("1.2.840.10008.5.1.4.1.1.1.2.1", "Digital Mammography X-Ray Image Storage - For Processing"),
    ("1.2.840.10008.5.1.4.1.1.1.3", "Digital Intra-Oral X-Ray Image Storage - For Presentation"),
    ("1.2.840.10008.5.1.4.1.1.1.3.1", "Digital Intra-Oral X-Ray Image Storage - For Processing"),
    ("1.2.840.10008.5.1.4.1.1.2", "CT Image Storage"),
    ("1.2.840.10008.5.1.4.1.1.2.1", "Enhanced CT Image Storage"),
    ("1.2.840.10008.5.1.4.1.1.2.2", "Legacy Converted Enhanced CT Image Storage"),
    ("1.2.840.10008.5.1.4.1.1.3.1", "Ultrasound Multi-frame Image Storage"),
    ("1.2.840.10008.5.1.4.1.1.4", "MR Image Storage"),
    ("1.2.840.10008.5.1.4.1.1.4.1", "Enhanced MR Image Storage"),
    ("1.2.840.10008.5.1.4.1.1.4.2", "MR Spectroscopy Storage"),
    ("1.2.840.10008.5.1.4.1.1.4.3", "Enhanced MR Color Image Storage"),
    ("1.2.840.10008.5.1.4.1.1.6.1", "Ultrasound Image Storage"),
    ("1.2.840.10008.5.1.4.1.1.6.2", "Enhanced US Volume Storage"),
    ("1.2.840.10008.5.1.4.1.1.7", "Secondary Capture Image Storage"),
    ("1.2.840.10008.5.1.4.1.1.7.1", "Multi-frame Single Bit Secondary Capture Image Storage"),
    ("1.2.840.10008.5.1.4.1.1.7.2", "Multi-frame Grayscale Byte Secondary Capture Image Storage"),
    ("1.2.840.10008.5.1.4.1.1.7.3", "Multi-frame Grayscale Word Secondary Capture Image Storage"),
    ("1.2.840.10008.5.1.4.1.1.7.4", "Multi-frame True Color Secondary Capture Image Storage"),
    ("1.2.840.10008.5.1.4.1.1.9.1.1", "12-lead ECG Waveform Storage"),
    ("1.2.840.10008.5.1.4.1.1.9.1.2", "General ECG Waveform Storage"),
    ("1.2.840.10008.5.1.4.1.1.9.1.3", "Ambulatory ECG Waveform Storage"),
    ("1.2.840.10008.5.1.4.1.1.9.2.1", "Hemodynamic Waveform Storage"),
    ("1.2.840.10008.5.1.4.1.1.9.3.1", "Cardiac Electrophysiology Waveform Storage"),
    ("1.2.840.10008.5.1.4.1.1.9.4.1", "Basic Voice Audio Waveform Storage"),
    ("1.2.840.10008.5.1.4.1.1.11.1", "Grayscale Softcopy Presentation State Storage"),
    ("1.2.840.10008.5.1.4.1.1.11.2", "Color Softcopy Presentation State Storage"),
    ("1.2.840.10008.5.1.4.1.1.11.3", "Pseudo-Color Softcopy Presentation State Storage"),
    ("1.2.840.10008.5.1.4.1.1.11.4", "Blending Softcopy Presentation State Storage"),
    ("1.2.840.10008.5.1.4.1.1.12.1", "X-Ray Angiographic Image Storage"),
    ("1.2.840.10008.5.1.4.1.1.12.1.1", "Enhanced XA Image Storage"),
    ("1.2.840.10008.5.1.4.1.1.12.2", "X-Ray Radiofluoroscopic Image Storage"),
    ("1.2.840.10008.5.1.4.1.1.12.2.1", "Enhanced XRF Image Storage"),
    ("1.2.840.10008.5.1.4.1.1.13.1.1", "X-Ray 3D Angiographic Image Storage"),
    ("1.2.840.10008.5.1.4.1.1.13.1.3", "Breast Tomosynthesis Image Storage"),
    ("1.2.840.10008.5.1.4.1.1.20", "Nuclear Medicine Image Storage"),
    ("1.2.840.10008.5.1.4.1.1.66", "Raw Data Storage"),
    ("1.2.840.10008.5.1.4.1.1.66.1", "Spatial Registration Storage"),
    ("1.2.840.10008.5.1.4.1.1.66.4", "Segmentation Storage"),
    ("1.2.840.10008.5.1.4.1.1.77.1.1", "VL Endoscopic Image Storage"),
    ("1.2.840.10008.5.1.4.1.1.77.1.2", "VL Microscopic Image Storage"),
    ("1.2.840.10008.5.1.4.1.1.77.1.4", "VL Photographic Image Storage"),
    ("1.2.840.10008.5.1.4.1.1.77.1.5.1", "Ophthalmic Photography 8 Bit Image Storage"),
    ("1.2.840.10008.5.1.4.1.1.77.1.5.4", "Ophthalmic Tomography Image Storage"),
    ("1.2.840.10008.5.1.4.1.1.77.1.6", "VL Whole Slide Microscopy Image Storage"),
    ("1.2.840.10008.5.1.4.1.1.88.11", "Basic Text SR Storage"),
    ("1.2.840.10008.5.1.4.1.1.88.22", "Enhanced SR Storage"),
    ("1.2.840.10008.5.1.4.1.1.88.33", "Comprehensive SR Storage"),
    ("1.2.840.10008.5.1.4.1.1.88.34", "Comprehensive 3D SR Storage"),
    ("1.2.840.10008.5.1.4.1.1.88.50", "Mammography CAD SR Storage"),
    ("1.2.840.10008.5.1.4.1.1.88.59", "Key Object Selection Document Storage"),
    ("1.2.840.10008.5.1.4.1.1.88.65", "Chest CAD SR Storage"),
    ("1.2.840.10008.5.1.4.1.1.88.67", "X-Ray Radiation Dose SR Storage"),
    ("1.2.840.10008.5.1.4.1.1.88.69", "Colon CAD SR Storage"),
    ("1.2.840.10008.5.1.4.1.1.104.1", "Encapsulated PDF Storage"),
    ("1.2.840.10008.5.1.4.1.1.104.2", "Encapsulated CDA Storage"),
    ("1.2.840.10008.5.1.4.1.1.128", "Positron Emission Tomography Image Storage"),
    ("1.2.840.10008.5.1.4.1.1.128.1", "Legacy Converted Enhanced PET Image Storage"),
    ("1.2.840.10008.5.1.4.1.1.130", "Enhanced PET Image Storage"),
    ("1.2.840.10008.5.1.4.1.1.481.1", "RT Image Storage"),
    ("1.2.840.10008.5.1.4.1.1.481.2", "RT Dose Storage"),
    ("1.2.840.10008.5.1.4.1.1.481.3", "RT Structure Set Storage"),
    ("1.2.840.10008.5.1.4.1.1.481.4", "RT Beams Treatment Record Storage"),
    ("1.2.840.10008.5.1.4.1.1.481.5", "RT Plan Storage"),
    ("1.2.840.10008.5.1.4.1.1.481.6", "RT Brachy Treatment Record Storage"),
    ("1.2.840.10008.5.1.4.1.1.481.7", "RT Treatment Summary Record Storage"),
    ("1.2.840.10008.5.1.4.1.1.481.8", "RT Ion Plan Storage"),
    ("1.2.840.10008.5.1.4.1.1.481.9", "RT Ion Beams Treatment Record Storage"),
    ("1.2.840.10008.5.1.4.1.2.1.1", "Patient Root Query/Retrieve Information Model - FIND"),
    ("1.2.840.10008.5.1.4.1.2.1.2", "Patient Root Query/Retrieve Information Model - MOVE"),
    ("1.2.840.10008.5.1.4.1.2.1.3", "Patient Root Query/Retrieve Information Model - GET"),
    ("1.2.840.10008.5.1.4.1.2.2.1", "Study Root Query/Retrieve Information Model - FIND"),
    ("1.2.840.10008.5.1.4.1.2.2.2", "Study Root Query/Retrieve Information Model - MOVE"),
    ("1.2.840.10008.5.1.4.1.2.2.3", "Study Root Query/Retrieve Information Model - GET"),
    ("1.2.840.10008.5.1.4.1.2.4.2", "Composite Instance Root Retrieve - MOVE"),
    ("1.2.840.10008.5.1.4.1.2.4.3", "Composite Instance Root Retrieve - GET"),
    ("1.2.840.10008.5.1.4.1.2.5.3", "Composite Instance Retrieve Without Bulk Data - GET"),
    ("1.2.840.10008.5.1.4.31", "Modality Worklist Information Model - FIND"),
    ("1.2.840.10008.5.1.4.33", "Instance Availability Notification SOP Class"),
    ("1.2.840.10008.5.1.4.34.6.1", "Unified Procedure Step - Push SOP Class"),
    ("1.2.840.10008.5.1.4.34.6.2", "Unified Procedure Step - Watch SOP Class"),
    ("1.2.840.10008.5.1.4.34.6.3", "Unified Procedure Step - Pull SOP Class"),
    ("1.2.840.10008.5.1.4.34.6.4", "Unified Procedure Step - Event SOP Class"),
];

/// The standard name of a SOP class UID, if the table knows it.
pub(super) fn name(uid: &str) -> Option<&'static str> {
    SOP_CLASSES.iter().find(|(u, _)| *u == uid).map(|(_, n)| *n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_well_formed() {
        assert!(SOP_CLASSES.len() >= 40);
        for (i, (uid, n)) in SOP_CLASSES.iter().enumerate() {
            assert!(uid.starts_with("1.2.840.10008.") && uid.bytes().all(|b| b.is_ascii_digit() || b == b'.'), "{uid}");
            assert!(!n.is_empty());
            assert!(SOP_CLASSES[..i].iter().all(|(u, _)| u != uid), "duplicate {uid}");
        }
        assert_eq!(name("1.2.840.10008.5.1.4.1.1.2"), Some("CT Image Storage"));
        assert_eq!(name(VERIFICATION), Some("Verification SOP Class"));
        assert_eq!(name("1.2.840.10008.5.1.4.1.1.2.99"), None);
    }
}
