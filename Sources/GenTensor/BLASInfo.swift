import COpenBLAS

/// The linked OpenBLAS build, as it describes itself (`openblas_get_config`).
public func blasDescription() -> String {
    guard let c = openblas_get_config() else { return "OpenBLAS" }
    return String(cString: c)
}
