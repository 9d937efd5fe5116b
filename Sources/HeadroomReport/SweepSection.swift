// The report of a merged sweep (`headroom report --sweep ID`): which shard and run measured which case, and on
// which machine, so a reader can tell a slow case from a slow machine.
import Foundation
import HeadroomCore
import HeadroomStore

public struct SweepSection: ReportSectionBuilder {
    public var merge: SweepMerge

    public init(_ merge: SweepMerge) { self.merge = merge }

    public func section(for run: StoredRun, folder: String) -> ReportSection? {
        var shards = TextTable(["shard", "run", "host", "machine", "cases"], rightAligned: [0, 1, 4])
        for s in merge.sources {
            shards.add([String(s.index), String(s.runID), s.host, s.machineFingerprint, String(s.cases)])
        }
        var cases = TextTable(["kind", "case", "threads", "parameters", "shard", "run"], rightAligned: [2, 4, 5])
        for c in run.cases {
            let params = c.params.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            cases.add([c.kind.rawValue, c.name, MeasuredCase.threadsLabel(c.threads), params,
                       c.facts[SweepMerge.shardFact] ?? "", c.facts[SweepMerge.runFact] ?? ""])
        }
        let machines = Set(merge.sources.map(\.machineFingerprint))
        var note = "Sweep \(merge.sweep): \(merge.count) shards, every case measured once by one of them and merged here. "
            + "The machine limits above are shard 0's (every shard probed its own machine)."
        if machines.count > 1 {
            note += " The shards ran on \(machines.count) kinds of machine (fingerprints differ): compare cases across shards with care."
        }
        return ReportSection(
            title: "Sweep (\(merge.count) shards)",
            markdown: "\(note)\n\n\(shards.markdown)\n\n\(cases.markdown)\n",
            html: "<p>\(HTML.escape(note))</p>\n\(shards.html)\n\(cases.html)")
    }
}
