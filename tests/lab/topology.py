"""Parametric lab topologies: one internet segment, sites behind routers.

    Site("office", wan_ip="203.0.113.1", lan="10.10.0.0/24",
         router_ip="10.10.0.1",
         hosts={"srv": "10.10.0.10", "lanphone": "10.10.0.21"},
         nat=None)                     # plain routing

builds: a switch namespace "<site>-lan", a router "<site>-rtr" (eth0 = WAN on
"inet", eth1 = LAN), and one namespace per host (eth0, default route via the
router). Public hosts sit directly on "inet" and get a route to every
site LAN that is not NATed (through that site's WAN address).

`nat` selects the router's nftables ruleset (see nat_ruleset()):
  None               plain routing (the LAN is reachable from the internet)
  "port-restricted"  masquerade (keeps the source port when free)
  "symmetric"        masquerade fully-random (new mapping per destination)
  "full-cone"        1:1 snat+dnat of the WAN address to Site.nat_host
  "restricted"       full-cone mapping, inbound only from IPs contacted
                     (timed nft set)
  "alg"              masquerade plus the kernel SIP ALG (ct helper "sip")
`forwards` adds port forwards [(proto, wan_port, host, host_port)] (server
behind its own NAT; wan_port may be a range "30000-31000" with host_port
None to keep the port); `router_sysctls` e.g. short conntrack UDP timeouts:
  {"net.netfilter.nf_conntrack_udp_timeout": 10,
   "net.netfilter.nf_conntrack_udp_timeout_stream": 10}
"""

from dataclasses import dataclass, field

INET_CIDR = "203.0.113.0/24"
INET_PREFIXLEN = 24


@dataclass
class Site:
    name: str
    wan_ip: str
    lan: str                      # e.g. "10.10.0.0/24"
    router_ip: str                # router's LAN address
    hosts: dict = field(default_factory=dict)   # name -> LAN address
    nat: str = None
    nat_host: str = None          # for full-cone / restricted: inside host
    forwards: list = field(default_factory=list)
    router_sysctls: dict = field(default_factory=dict)
    host_sysctls: dict = field(default_factory=dict)   # name -> {k: v}

    @property
    def prefixlen(self):
        return int(self.lan.split("/")[1])


def home_site(name, wan_ip, nat, router_sysctls=None):
    """A home behind its own NAT router: LAN 192.168.1.0/24, router .1,
    one phone "<name>-phone" at 192.168.1.10 (the inside host of a
    full-cone / restricted NAT). LANs repeat: each site is its own
    segment."""
    phone = name + "-phone"
    return Site(name=name, wan_ip=wan_ip, lan="192.168.1.0/24",
                router_ip="192.168.1.1", hosts={phone: "192.168.1.10"},
                nat=nat, nat_host=phone, router_sysctls=router_sysctls or {})


def nat_homes():
    """The NAT feature scenarios' homes, one phone behind each filtering
    NAT: sym-phone (symmetric, WAN 203.0.113.24), prc-phone
    (port-restricted, .23), rc-phone (address-restricted, .22)."""
    return [home_site("sym", "203.0.113.24", "symmetric"),
            home_site("prc", "203.0.113.23", "port-restricted"),
            home_site("rc", "203.0.113.22", "restricted")]


def nat_ruleset(site):
    """nftables ruleset text for a site's router, or None for plain routing.
    Interfaces: eth0 = WAN, eth1 = LAN."""
    wan = site.wan_ip
    fwd_rules = []
    for proto, wan_port, host, host_port in site.forwards:
        # wan_port: 5060 or "30000-31000"; host_port None keeps the port
        target = site.hosts[host]
        if host_port is not None:
            target += ":%d" % host_port
        fwd_rules.append(
            "        iifname \"eth0\" ip daddr %s %s dport %s dnat ip to %s"
            % (site.wan_ip, proto, wan_port, target))
    fwd = "\n".join(fwd_rules)
    if site.nat is None:
        if site.forwards:
            raise ValueError("port forwards need a NAT")
        return None
    if site.nat in ("port-restricted", "symmetric", "alg"):
        flags = " fully-random" if site.nat == "symmetric" else ""
        helper = ""
        helper_rule = ""
        if site.nat == "alg":
            helper = """
    ct helper sip-udp { type "sip" protocol udp; }
    ct helper sip-tcp { type "sip" protocol tcp; }"""
            helper_rule = """
        udp dport 5060 ct helper set "sip-udp"
        tcp dport 5060 ct helper set "sip-tcp\""""
        return """table ip lab {%s
    chain pre {
        type nat hook prerouting priority dstnat; policy accept;
%s
    }
    chain helpers {
        type filter hook prerouting priority filter; policy accept;%s
    }
    chain post {
        type nat hook postrouting priority srcnat; policy accept;
        oifname "eth0" masquerade%s
    }
    chain forward {
        type filter hook forward priority filter; policy drop;
        iifname "eth1" accept
        ct state established,related accept
        ct status dnat accept
    }
}
""" % (helper, fwd, helper_rule, flags)
    if site.nat in ("full-cone", "restricted"):
        inside = site.hosts[site.nat_host]
        restrict_set = ""
        restrict_rule = "        ct status dnat accept"
        learn = ""
        if site.nat == "restricted":
            restrict_set = """
    set peers { type ipv4_addr; flags timeout; timeout 120s; }"""
            restrict_rule = "        ct status dnat ip saddr @peers accept"
            learn = "\n        iifname \"eth1\" update @peers { ip daddr }"
        return """table ip lab {%s
    chain pre {
        type nat hook prerouting priority dstnat; policy accept;
        iifname "eth0" ip daddr %s dnat ip to %s
    }
    chain post {
        type nat hook postrouting priority srcnat; policy accept;
        oifname "eth0" ip saddr %s snat ip to %s
    }
    chain forward {
        type filter hook forward priority filter; policy drop;%s
        iifname "eth1" accept
        ct state established,related accept
%s
    }
}
""" % (restrict_set, wan, inside, inside, wan, learn, restrict_rule)
    raise ValueError("unknown nat type %r" % site.nat)


class Topology:
    """The built lab: nodes by name, plus address helpers."""

    def __init__(self, lab, public, sites):
        self.lab = lab
        self.public = public          # name -> address
        self.sites = {s.name: s for s in sites}

    def __getitem__(self, name):
        return self.lab[name]

    def ip(self, name):
        """Address of a host or router (router: WAN address)."""
        return self.lab[name].addr("eth0")

    def close(self):
        self.lab.close()


def build(lab, public, sites):
    """Build an internet with public hosts {name: ip} and the given sites."""
    inet = lab.add_switch("inet")
    for site in sites:
        lanmask = site.prefixlen
        lansw = lab.add_switch(site.name + "-lan")
        rtr = lab.add_router(site.name + "-rtr", site.router_sysctls)
        lab.connect(rtr, inet, "eth0", "%s/%d" % (site.wan_ip, INET_PREFIXLEN))
        lab.connect(rtr, lansw, "eth1", "%s/%d" % (site.router_ip, lanmask))
        rules = nat_ruleset(site)
        if rules:
            rtr.nft(rules)
        for hname, hip in site.hosts.items():
            h = lab.add_host(hname, site.host_sysctls.get(hname))
            lab.connect(h, lansw, "eth0", "%s/%d" % (hip, lanmask),
                        gateway=site.router_ip)
    # Non-NAT LANs are routable from the internet: public hosts and the
    # other sites' routers reach them through that site's WAN address.
    for site in sites:
        rtr = lab[site.name + "-rtr"]
        for other in sites:
            if other is not site and other.nat is None \
                    and other.lan != site.lan:
                rtr.route(other.lan, other.wan_ip)
    for pname, pip in public.items():
        h = lab.add_host(pname)
        lab.connect(h, inet, "eth0", "%s/%d" % (pip, INET_PREFIXLEN))
        for site in sites:
            if site.nat is None:
                h.route(site.lan, site.wan_ip)
    return Topology(lab, public, sites)


# The foundation topology: one office without NAT, two public phones.
OFFICE = Site(
    name="office", wan_ip="203.0.113.1", lan="10.10.0.0/24",
    router_ip="10.10.0.1",
    hosts={"srv": "10.10.0.10", "lanphone": "10.10.0.21",
           "lanphone2": "10.10.0.22", "gw": "10.10.0.50"})
PUBLIC = {"pub1": "203.0.113.31", "pub2": "203.0.113.32"}


def build_office(lab, office=None, public=None):
    return build(lab, dict(public or PUBLIC), [office or OFFICE])
