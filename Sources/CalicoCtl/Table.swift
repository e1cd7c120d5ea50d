/// Column tables as upstream calicoctl prints them.
public enum Table {
    /// `get` output: a header row and rows in columns separated by at least three spaces
    /// (Go's `tabwriter` with minimum width 5 and padding 3, as upstream uses), no trailing
    /// spaces.
    public static func columns(_ header: [String], _ rows: [[String]]) -> String {
        let all = [header] + rows
        var widths = [Int](repeating: 0, count: header.count)
        for row in all {
            for (i, cell) in row.enumerated() where i < widths.count {
                widths[i] = max(widths[i], cell.count)
            }
        }
        var out = ""
        for row in all {
            var line = ""
            for (i, cell) in row.enumerated() {
                if i == row.count - 1 {
                    line += cell
                } else {
                    let width = max(widths[i] + 3, 5)
                    line += cell + String(repeating: " ", count: width - cell.count)
                }
            }
            while line.last == " " { line.removeLast() }
            out += line + "\n"
        }
        return out
    }

    /// A boxed table in the `+----+` style upstream's `ipam show` prints (olekukonko's
    /// tablewriter defaults): headers centred, numeric cells right-aligned, others left.
    public static func boxed(_ header: [String], _ rows: [[String]]) -> String {
        var widths = header.map(\.count)
        for row in rows {
            for (i, cell) in row.enumerated() where i < widths.count {
                widths[i] = max(widths[i], cell.count)
            }
        }
        let rule = "+" + widths.map { String(repeating: "-", count: $0 + 2) + "+" }.joined() + "\n"
        func line(_ cells: [String], align: (Int, String) -> String) -> String {
            "|" + cells.enumerated().map { (i, c) in " " + align(i, c) + " |" }.joined() + "\n"
        }
        var out = rule
        out += line(header) { (i, c) in
            let gap = widths[i] - c.count
            let left = gap / 2
            return String(repeating: " ", count: left) + c + String(repeating: " ", count: gap - left)
        }
        out += rule
        for row in rows {
            out += line(row) { (i, c) in
                let gap = String(repeating: " ", count: widths[i] - c.count)
                return isNumeric(c) ? gap + c : c + gap
            }
        }
        out += rule
        return out
    }

    private static func isNumeric(_ s: String) -> Bool {
        !s.isEmpty && Double(s) != nil
    }
}
