import CalicoCtl
import Foundation

exit(CalicoCtl.run(Array(CommandLine.arguments.dropFirst()), environment: ProcessInfo.processInfo.environment,
                   console: .standard))
