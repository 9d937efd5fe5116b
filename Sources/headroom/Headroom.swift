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

            Start here:
              headroom whatif --model llama-3.1-8b --users 5000
                  size a fleet for your traffic (predicted, no measuring, instant)
              headroom run
                  measure this machine, store the samples, plan, write a report
              headroom load --endpoint http://127.0.0.1:8080 --profile sweep
                  measure a running OpenAI-compatible server under load (TTFT, ITL, goodput)
              headroom bench infer --model small --precision q4_0
                  one inference measurement against this machine's limits

            Exit codes, for every command: 0 ok; 1 a failure while running (for gate: a significant \
            regression); 2 bad input (a file, option or value; the message names it); 130 interrupted.
            """,
        version: version,
        subcommands: [RunCommand.self, ProbeCommand.self, BenchCommand.self, HistoryCommand.self, ReportCommand.self,
                      PlanCommand.self, CalibrateCommand.self, WhatifCommand.self, SimulateCommand.self, ModelsCommand.self, HardwareCommand.self,
                      GateCommand.self, BaselineCommand.self, ModelCommand.self, ServeCommand.self, LoadCommand.self,
                      SweepCommand.self])
}
