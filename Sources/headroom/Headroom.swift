// The command line: parses, calls the layers, prints. Tables for people, --json for machines.
import ArgumentParser
import Foundation
import HeadroomCore
import HeadroomKernels
import HeadroomRunner
import HeadroomStore


struct Headroom: ParsableCommand {
    static let version = "0.1.0"
    static let configuration = CommandConfiguration(
        commandName: "headroom",
        abstract: "Benchmark LLM kernels on this machine and plan the hardware to serve them.",
        discussion: """
            Every figure Headroom prints is either measured (on this machine, with its sample count and spread) \
            or predicted (by the performance model, with the calibration it used), and says which.
            """,
        version: version,
        subcommands: [RunCommand.self, ProbeCommand.self, BenchCommand.self, HistoryCommand.self, ReportCommand.self,
                      PlanCommand.self, WhatifCommand.self, ModelsCommand.self, HardwareCommand.self,
                      GateCommand.self, BaselineCommand.self, ModelCommand.self])
}
