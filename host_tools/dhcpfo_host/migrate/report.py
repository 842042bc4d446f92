"""What a migration could not carry over, with file and line."""

import json


class Report:
    """Items are dicts: file, line, construct, reason, kind.

    kind: "unmapped" (a configuration construct with no equivalent: it is
    left out), "dropped" (lease data our store cannot hold), "note" (mapped,
    but with a change worth reading: a default guessed, a value rounded).
    """

    def __init__(self):
        self.items = []
        self.counts = {}

    def add(self, kind, where, construct, reason):
        path, line = where if where is not None else ("", 0)
        self.items.append({"kind": kind, "file": path, "line": line, "construct": construct,
                           "reason": reason})

    def unmapped(self, stmt, reason, construct=None):
        self.add("unmapped", (stmt.path, stmt.line), construct or stmt.text(), reason)

    def note(self, stmt, reason, construct=None):
        where = (stmt.path, stmt.line) if stmt is not None else None
        self.add("note", where, construct or (stmt.text() if stmt is not None else ""), reason)

    def dropped(self, stmt, reason, construct=None):
        self.add("dropped", (stmt.path, stmt.line), construct or stmt.text(), reason)

    def count(self, name, n=1):
        self.counts[name] = self.counts.get(name, 0) + n

    def of_kind(self, kind):
        return [i for i in self.items if i["kind"] == kind]

    def as_json(self):
        return json.dumps({"items": self.items, "counts": self.counts}, indent=1, sort_keys=True)

    def as_text(self):
        out = []
        for kind, title in (("unmapped", "Not mapped (left out of the configuration)"),
                            ("dropped", "Lease data not carried over"),
                            ("note", "Notes")):
            items = self.of_kind(kind)
            if not items:
                continue
            out.append("%s: %d" % (title, len(items)))
            for i in items:
                loc = "%s:%d" % (i["file"], i["line"]) if i["file"] else "-"
                out.append("  %s: %s\n      %s" % (loc, i["construct"], i["reason"]))
        if self.counts:
            out.append("Counts:")
            for k in sorted(self.counts):
                out.append("  %s: %d" % (k, self.counts[k]))
        return "\n".join(out) + "\n"
