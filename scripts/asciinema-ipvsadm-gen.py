# Writes `ipvsadm -Ln --stats`-shaped text for 20 services x 10 real servers every second,
# counters advancing as the scripted cluster's do.
import random, time, os, sys
random.seed(42)
S, R = 20, 10
tot = [[[0]*5 for _ in range(R)] for _ in range(S)]
end = time.time() + float(sys.argv[1])
while time.time() < end:
    out = ["IP Virtual Server version 1.2.1 (size=4096)",
           "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes",
           "  -> RemoteAddress:Port"]
    for s in range(S):
        for r in range(R):
            c = 5 + random.randrange(20)
            t = tot[s][r]
            t[0] += c; t[1] += c*12; t[2] += c*10; t[3] += c*1500; t[4] += c*90000
        st = [sum(tot[s][r][i] for r in range(R)) for i in range(5)]
        def h(n):
            for u in ["", "K", "M", "G", "T"]:
                if n < 100000: return f"{n}{u}"
                n //= 1000
            return f"{n}P"
        out.append(f"TCP  192.0.2.10:{80+s:<5}                {h(st[0]):>8} {h(st[1]):>8} {h(st[2]):>8} {h(st[3]):>8} {h(st[4]):>8}")
        for r in range(R):
            t = tot[s][r]
            out.append(f"  -> 10.0.{(s*R+r)//250}.{(s*R+r)%250+2}:80              {h(t[0]):>8} {h(t[1]):>8} {h(t[2]):>8} {h(t[3]):>8} {h(t[4]):>8}")
    tmp = "ipvsadm.txt.tmp"
    open(tmp, "w").write("\n".join(out) + "\n")
    os.replace(tmp, "ipvsadm.txt")
    time.sleep(1)
