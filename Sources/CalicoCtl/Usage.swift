/// Help texts, in upstream's words where they exist.
enum Usage {
    static let main = """
        Usage:
          calicoctl [options] <command> [<args>...]

            create       Create a resource by file, directory or stdin.
            replace      Replace a resource by file, directory or stdin.
            apply        Apply a resource by file, directory or stdin.  This creates a resource
                         if it does not exist, and replaces a resource if it does exists.
            patch        Patch a pre-exisiting resource in place.
            delete       Delete a resource identified by file, directory, stdin or resource type and
                         name.
            get          Get a resource identified by file, directory, stdin or resource type and
                         name.
            label        Add or update labels of resources.
            ipam         IP address management.
            node         Calico node management.
            version      Display the version of this binary.

        Options:
          -h --help                 Show this screen.
          -c --config=<config>      Path to the file containing connection configuration in
                                    YAML or JSON format. [default: /etc/calico/calicoctl.cfg]
          -l --log-level=<level>    Set the log level (accepted for compatibility).

        Description:
          The calicoctl command line tool is used to manage Calico network and security
          policy, to view and manage endpoint configuration, and to manage a Calico
          node instance.

          See 'calicoctl <command> --help' to read about a specific subcommand.
        """

    static func text(for command: String) -> String {
        switch command {
        case "create", "apply", "replace":
            let extra = command == "create" ? " [--skip-exists]" : ""
            return """
                Usage:
                  calicoctl \(command) --filename=<FILENAME>\(extra) [--config=<CONFIG>] [--namespace=<NS>]

                Options:
                  -h --help                 Show this screen.
                  -f --filename=<FILENAME>  Filename to use to \(command) the resource.  If set to
                                            "-" loads from stdin. If filename is a directory, this command is
                                            invoked for each .json .yaml and .yml file within that directory.
                \(command == "create" ? "  --skip-exists             Skip over and treat as successful any attempts to\n                            create an entry that already exists.\n" : "")  -c --config=<CONFIG>      Path to the file containing connection configuration in
                                            YAML or JSON format. [default: /etc/calico/calicoctl.cfg]
                  -n --namespace=<NS>       Namespace of the resource.
                                            Only applicable to NetworkPolicy and WorkloadEndpoint.
                                            Uses the default namespace if not specified.
                """
        case "delete":
            return """
                Usage:
                  calicoctl delete ( (<KIND> [<NAME>...]) |
                                   --filename=<FILE>)
                                   [--skip-not-exists] [--config=<CONFIG>] [--namespace=<NS>]

                Options:
                  -h --help                 Show this screen.
                  --skip-not-exists         Skip over and treat as successful, resources that
                                            don't exist.
                  -f --filename=<FILENAME>  Filename to use to delete the resource.  If set to
                                            "-" loads from stdin.
                  -c --config=<CONFIG>      Path to the file containing connection configuration.
                  -n --namespace=<NS>       Namespace of the resource.
                """
        case "get":
            return """
                Usage:
                  calicoctl get ( (<KIND> [<NAME>...]) |
                                --filename=<FILENAME>)
                                [--output=<OUTPUT>] [--config=<CONFIG>] [--namespace=<NS>] [--all-namespaces]

                Options:
                  -h --help                    Show this screen.
                  -f --filename=<FILENAME>     Filename to use to get the resource.  If set to
                                               "-" loads from stdin.
                  -o --output=<OUTPUT FORMAT>  Output format.  One of: yaml, json, ps, wide.
                                               [Default: ps]
                  -c --config=<CONFIG>         Path to the file containing connection configuration.
                  -n --namespace=<NS>          Namespace of the resource.
                  -a --all-namespaces          If present, list the requested object(s) across
                                               all namespaces.

                Valid resource types are: ippools, nodes, profiles, networkpolicies (policy, np),
                globalnetworkpolicies (gnp), workloadendpoints (wep), hostendpoints (hep),
                clusterinformations, felixconfigurations.
                """
        case "patch":
            return """
                Usage:
                  calicoctl patch <KIND> <NAME> --patch=<PATCH> [--type=<TYPE>] [--config=<CONFIG>] [--namespace=<NS>]

                Options:
                  -h --help                  Show this screen.
                  -p --patch=<PATCH>         Spec to use to patch the resource (JSON).
                  -t --type=<TYPE>           Format of patch type: merge or strategic (the same
                                             for Calico resources). [Default: strategic]
                  -c --config=<CONFIG>       Path to the file containing connection configuration.
                  -n --namespace=<NS>        Namespace of the resource.
                """
        case "label":
            return """
                Usage:
                  calicoctl label ( <KIND> <NAME>
                                  ( <LABEL>=<VALUE> [--overwrite] |
                                    <LABEL> --remove | <LABEL>- ) )
                                  [--config=<CONFIG>] [--namespace=<NS>]

                Options:
                  -h --help                  Show this screen.
                  -c --config=<CONFIG>       Path to the file containing connection configuration.
                  -n --namespace=<NS>        Namespace of the resource.
                  --overwrite                If true, overwrite the value when the key is already
                                             present in labels.
                  --remove                   If true, remove the specified key in labels.
                """
        case "ipam":
            return """
                Usage:
                  calicoctl ipam <command> [<args>...]

                    show         Show details of a Calico IP address assignment,
                                 or of overall IP usage.
                                 [--ip=<IP>] [--show-blocks] [--show-borrowed] [--show-configuration]
                    check        Check the integrity of the IPAM datastructures.
                    release      Release a Calico assigned IP address. --ip=<IP>

                Options:
                  -h --help      Show this screen.
                """
        case "node":
            return """
                Usage:
                  calicoctl node status

                    status       View the current status of calico-felix on this node.

                Options:
                  -h --help      Show this screen.
                """
        case "version":
            return """
                Usage:
                  calicoctl version [--client] [--config=<CONFIG>]

                Options:
                  -h --help             Show this screen.
                  --client              Display only the client version.
                  -c --config=<CONFIG>  Path to the file containing connection configuration.
                """
        default:
            return main
        }
    }
}
