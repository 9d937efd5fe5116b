// The published fits (published.yaml) that `plan` and `whatif` put on catalog GPUs: applied before the
// endpoint calibrations, so a fit to the user's own endpoint measurements takes precedence over it.
import HeadroomCore

extension PlanJob {
    /// The catalog GPUs among `ids` that published measurements name, each fitted once per process from its
    /// catalog profile (`PublishedCalibration.memoisedFits`), whatever the plan did to the profile since.
    func publishedFits(_ ids: [String]) -> [PublishedFit] {
        PublishedCalibration.fits(hardware: catalog.hardware.filter { ids.contains($0.id) }, published: catalog.published,
                                  models: catalog.models)
    }

    /// The published fits a plan of `input` uses: its GPUs' fits at the precisions it considers (nil: none).
    func publishedFits(in input: PlanInput) -> [PublishedFit]? {
        let fits = publishedFits(input.hardware.map(\.id)).filter { f in f.precisions.contains { input.precisions.contains($0) } }
        return fits.isEmpty ? nil : fits
    }

    /// `hardware` with each published fit's efficiencies and label; the others keep theirs ("default efficiencies, uncalibrated").
    func applyingPublishedFits(_ hardware: [HardwareProfile]) -> [HardwareProfile] {
        let fits = publishedFits(hardware.map(\.id))
        return hardware.map { h in fits.filter { $0.hardware == h.id }.reduce(h) { $0.applying($1) } }
    }
}
