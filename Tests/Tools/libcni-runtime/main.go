// libcni-runtime: a minimal container runtime's network step, built on Debian's libcni
// (golang-github-appc-cni-dev), to run CNI plugins exactly as libcni-based runtimes do:
// conflist parsing, VERSION checks, CNI_ARGS, prevResult from the result cache, DEL of the
// chain in reverse.
//
//	libcni-runtime [-cni-path DIRS] [-cache-dir DIR] [-ifname NAME] [-args K=V;K=V] add|check|del CONFLIST NETNS CONTAINERID
//
// add prints the result (in the conflist's cniVersion) on stdout; every failure is one
// line on stderr and exit status 1. Built by the tests in GOPATH mode, offline:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o DIR/libcni-runtime .
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/libcni"
)

func main() {
	cniPath := flag.String("cni-path", "/usr/lib/cni", "plugin directories, joined by ':'")
	cacheDir := flag.String("cache-dir", "", "libcni's result cache directory (default: libcni's /var/lib/cni)")
	ifName := flag.String("ifname", "eth0", "the interface name in the container")
	cniArgs := flag.String("args", "", "CNI_ARGS as K=V;K=V")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: libcni-runtime [flags] add|check|del CONFLIST NETNS CONTAINERID")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 4 {
		flag.Usage()
		os.Exit(2)
	}
	command, confPath, netns, containerID := flag.Arg(0), flag.Arg(1), flag.Arg(2), flag.Arg(3)

	list, err := libcni.ConfListFromFile(confPath)
	if err != nil {
		fail("reading %s: %v", confPath, err)
	}
	rt := &libcni.RuntimeConf{ContainerID: containerID, NetNS: netns, IfName: *ifName}
	for _, pair := range strings.Split(*cniArgs, ";") {
		if pair == "" {
			continue
		}
		kv := strings.SplitN(pair, "=", 2)
		if len(kv) != 2 {
			fail("-args: %q is not K=V", pair)
		}
		rt.Args = append(rt.Args, [2]string{kv[0], kv[1]})
	}
	dirs := filepath.SplitList(*cniPath)
	var cni *libcni.CNIConfig
	if *cacheDir != "" {
		cni = libcni.NewCNIConfigWithCacheDir(dirs, *cacheDir, nil)
	} else {
		cni = libcni.NewCNIConfig(dirs, nil)
	}
	ctx := context.Background()

	switch command {
	case "add":
		result, err := cni.AddNetworkList(ctx, list, rt)
		if err != nil {
			fail("AddNetworkList: %v", err)
		}
		if err := result.Print(); err != nil {
			fail("printing the result: %v", err)
		}
	case "check":
		if err := cni.CheckNetworkList(ctx, list, rt); err != nil {
			fail("CheckNetworkList: %v", err)
		}
	case "del":
		if err := cni.DelNetworkList(ctx, list, rt); err != nil {
			fail("DelNetworkList: %v", err)
		}
	default:
		flag.Usage()
		os.Exit(2)
	}
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "libcni-runtime: "+format+"\n", args...)
	os.Exit(1)
}
