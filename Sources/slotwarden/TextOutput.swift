import Foundation

func printError(_ message: String) {
    var standardError = FileHandle.standardError
    print(message, to: &standardError)
}

/// Right-aligned columns, but for a last column of words (left-aligned).
func table(_ header: [String], _ rows: [[String]], leftAlignLast: Bool = false) -> String {
    let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
    return ([header] + rows).map { row in
        row.indices.map { column in
            let padding = String(repeating: " ", count: widths[column] - row[column].count)
            if leftAlignLast && column == row.count - 1 { return row[column] }
            return padding + row[column]
        }.joined(separator: "  ")
    }.joined(separator: "\n")
}

