// The published fits (published.yaml) that `plan` and `whatif` put on catalog GPUs: applied before the
// endpoint calibrations, so a fit to the user's own endpoint measurements takes precedence over it.
import HeadroomCore

extension PlanJob {
    /// The catalog GPUs among `ids` that published measurements at `precisions` name (fp16 and bf16 count as one),
    /// each fitted once per process from its catalog profile (`PublishedCalibration.memoisedFits`), whatever the
    /// plan did to the profile since; a GPU or precision the plan does not consider costs nothing.
    func publishedFits(_ ids: [String], precisions: [Precision]) -> [PublishedFit] {
        let published = catalog.published.filter { m in PublishedCalibration.precisionGroup(m.precision).contains { precisions.contains($0) } }
        return PublishedCalibration.fits(hardware: catalog.hardware.filter { ids.contains($0.id) }, published: published, models: catalog.models)
    }

    /// The published fits a plan of `input` uses: its GPUs' fits at the precisions it considers (nil: none).
    func publishedFits(in input: PlanInput) -> [PublishedFit]? {
        let fits = publishedFits(input.hardware.map(\.id), precisions: input.precisions)
        return fits.isEmpty ? nil : fits
    }

    /// `hardware` with each published fit's efficiencies and label; the others keep theirs ("default efficiencies, uncalibrated").
    func applyingPublishedFits(_ hardware: [HardwareProfile], precisions: [Precision]) -> [HardwareProfile] {
        let fits = publishedFits(hardware.map(\.id), precisions: precisions)
        return hardware.map { h in fits.filter { $0.hardware == h.id }.reduce(h) { $0.applying($1) } }
    }
}
