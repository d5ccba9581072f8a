import XCTest
@testable import GenStudio

/// The progress rate counts only time inside training steps (evaluations between steps left out).
final class ThroughputMeterTests: XCTestCase {
    func testRateBeforeAndAfterTheFirstWindowCloses() {
        var meter = ThroughputMeter()
        XCTAssertEqual(meter.rate, 0)
        XCTAssertNil(meter.eta(remaining: 1000))
        for _ in 0..<19 { meter.record(units: 128, seconds: 0.1) }    // 1.9 s, 19 steps: the open window's rate
        XCTAssertEqual(meter.rate, 1280, accuracy: 1e-6)
        meter.record(units: 128, seconds: 0.1)                         // 2.0 s: the window closes
        XCTAssertEqual(meter.rate, 1280, accuracy: 1e-6)
        meter.record(units: 128, seconds: 1.0)                         // a slow step in the next window: not shown yet
        XCTAssertEqual(meter.rate, 1280, accuracy: 1e-6)
        XCTAssertEqual(meter.eta(remaining: 2560) ?? -1, 2, accuracy: 1e-9)
        XCTAssertEqual(meter.eta(remaining: -5) ?? -1, 0)
    }

    func testFiftyFastStepsCloseAWindowAndPausesBetweenStepsDoNotCount() {
        var meter = ThroughputMeter()
        // 50 steps of 10 ms; the caller does not record the (long) evaluation after them.
        for _ in 0..<50 { meter.record(units: 64, seconds: 0.01) }
        XCTAssertEqual(meter.rate, 6400, accuracy: 1e-6)
        // The next window's rate reflects only its own steps.
        for _ in 0..<50 { meter.record(units: 64, seconds: 0.02) }
        XCTAssertEqual(meter.rate, 3200, accuracy: 1e-6)
    }

    func testZeroDurationStepsNeverGiveAnInfiniteRate() {
        var meter = ThroughputMeter()
        for _ in 0..<50 { meter.record(units: 1, seconds: 0) }
        XCTAssertEqual(meter.rate, 0)
        XCTAssertNil(meter.eta(remaining: 5))
        for _ in 0..<50 { meter.record(units: 1, seconds: -1) }     // a clock step backwards
        XCTAssertTrue(meter.rate.isFinite)
    }
}

/// Options given on the command line of a resumed run, found for the warning.
final class ResumeOptionTests: XCTestCase {
    func testOptionsGiven() {
        let args = ["gen", "vae", "train", "--resume", "c.safetensors", "--latent-dim", "8", "--beta=2", "--steps", "9", "--", "--seed"]
        XCTAssertEqual(optionsGiven(["--latent-dim", "--beta", "--seed", "--learning-rate"], in: args), ["--latent-dim", "--beta"])
        XCTAssertEqual(optionsGiven(["--beta"], in: ["gen", "--beta-x", "1"]), [])
        XCTAssertNil(ignoredOnResumeWarning([], resume: URL(fileURLWithPath: "/r/c.safetensors")))
        let w = ignoredOnResumeWarning(["--latent-dim", "--beta"], resume: URL(fileURLWithPath: "/r/c.safetensors"))
        XCTAssertTrue(w?.contains("/r/c.safetensors: --latent-dim, --beta ignored") ?? false, w ?? "")
        // Only options given with a value other than the checkpoint's are named.
        var requested = VAETrainingConfig(), stored = VAETrainingConfig()
        requested.latentDim = 8; requested.beta = 2; stored.beta = 2
        XCTAssertEqual(ignoredOnResume(requested.settingsKeptOnResume(stored: stored), arguments: args),
                       ["--latent-dim (the checkpoint's 2)"])
        // Cadence options a resume applies: named when given with another value than the checkpoint's.
        var gan = GANTrainingConfig(), ganStored = GANTrainingConfig()
        gan.sampleEvery = 5; gan.logEvery = 10; gan.checkpointEvery = 50
        ganStored.sampleEvery = 20
        let ganArgs = ["gen", "gan", "train", "--sample-every", "5", "--log-every", "10", "--checkpoint-every=50"]
        let changed = changedOnResume(gan.settingsAppliedOnResume(stored: ganStored), arguments: ganArgs)
        XCTAssertEqual(changed, ["--checkpoint-every 50 (none in the checkpoint)", "--sample-every 5 (the checkpoint's 20)"])
        XCTAssertEqual(changedOnResume(gan.settingsAppliedOnResume(stored: ganStored), arguments: ["gen", "gan", "train"]), [])
        let both = ignoredOnResumeWarning(["--beta (the checkpoint's 1.0)"], changed: changed, resume: URL(fileURLWithPath: "/r/c.safetensors"))
        XCTAssertEqual(both, "resuming from /r/c.safetensors: --beta (the checkpoint's 1.0) ignored; a resumed run keeps the model and "
                       + "training settings stored in its checkpoint (start a new run, without --resume, to change them); "
                       + "--checkpoint-every 50 (none in the checkpoint), --sample-every 5 (the checkpoint's 20) used from here on")
        XCTAssertEqual(ignoredOnResumeWarning([], changed: ["--log-every 3 (the checkpoint's 10)"], resume: URL(fileURLWithPath: "/r/c.safetensors")),
                       "resuming from /r/c.safetensors: --log-every 3 (the checkpoint's 10) used from here on")
    }

    /// Step totals: the smaller of --steps and --epochs × steps per epoch, never overflowing.
    func testStepTotal() {
        XCTAssertNil(stepTotal(steps: nil, epochs: nil, perEpoch: 3))
        XCTAssertEqual(stepTotal(steps: 7, epochs: nil, perEpoch: 3), 7)
        XCTAssertEqual(stepTotal(steps: 7, epochs: 2, perEpoch: 3), 6)
        XCTAssertEqual(stepTotal(steps: nil, epochs: Int.max, perEpoch: 3), Int.max)
        XCTAssertEqual(stepTotal(steps: 9, epochs: Int.max, perEpoch: 3), 9)
    }

    /// Stop reasons name the limit the user set.
    func testStopReasons() {
        XCTAssertEqual(stepLimitReason(total: 10, steps: 10, epochs: nil), "reached 10 steps")
        XCTAssertEqual(stepLimitReason(total: 469, steps: nil, epochs: 1), "reached 1 epoch")
        XCTAssertEqual(stepLimitReason(total: 938, steps: 5000, epochs: 2), "reached 2 epochs")
        XCTAssertEqual(stepLimitReason(total: 100, steps: 100, epochs: 3), "reached 100 steps")
        XCTAssertEqual(epochLimitReason(1), "reached 1 epoch")
        XCTAssertEqual(epochLimitReason(30), "reached 30 epochs")
        XCTAssertEqual(stepLimitReason(total: 1, steps: 1, epochs: nil), "reached 1 step")
        XCTAssertEqual(stoppedLine(reason: "reached 8 steps", steps: 8), "stopped: reached 8 steps")
        XCTAssertEqual(stoppedLine(reason: "reached 1 epoch", steps: 469), "stopped: reached 1 epoch after 469 steps")
        XCTAssertEqual(stoppedLine(reason: "time limit of 3.0 minutes", steps: 6101), "stopped: time limit of 3.0 minutes after 6101 steps")
        XCTAssertEqual(stoppedLine(reason: "interrupted", steps: 1), "stopped: interrupted after 1 step")
    }
}

/// Default run folders are unique even for runs started in the same second.
final class RunFolderTests: XCTestCase {
    func testRunsStartedInTheSameSecondGetTheirOwnFolders() throws {
        let root = try makeStudioTempDir(self).appendingPathComponent("outputs")
        let now = Date(timeIntervalSince1970: 1_800_000_000)    // 2027-01-15 08:00:00 UTC
        let folders = try (0..<3).map { _ in try RunFolder(explicit: nil, generator: "vae", now: now, root: root) }
        XCTAssertEqual(folders.map(\.url.lastPathComponent), ["20270115-080000", "20270115-080000-2", "20270115-080000-3"])
        XCTAssertTrue(folders.allSatisfy(\.created))
        // Concurrent starts: every run gets a distinct folder.
        let lock = NSLock()
        var names: [String] = []
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            if let f = try? RunFolder(explicit: nil, generator: "gan", now: now, root: root) {
                lock.lock(); names.append(f.url.lastPathComponent); lock.unlock()
            }
        }
        XCTAssertEqual(names.count, 8)
        // A failed run that wrote nothing removes the folder it made, not the folders above it.
        let unused = try RunFolder(explicit: nil, generator: "gan", now: now, root: root)
        unused.discardIfUnused()
        XCTAssertFalse(FileManager.default.fileExists(atPath: unused.url.path))
        XCTAssertTrue(FileManager.default.fileExists(atPath: root.appendingPathComponent("gan").path))
        // The first run into a fresh place made `outputs` and `outputs/<generator>` too: a run that
        // writes nothing takes them away again, and only them.
        let fresh = try makeStudioTempDir(self)
        let freshRoot = fresh.appendingPathComponent("outputs")
        let first = try RunFolder(explicit: nil, generator: "dream", now: now, root: freshRoot)
        first.discardIfUnused()
        XCTAssertFalse(FileManager.default.fileExists(atPath: freshRoot.path))
        XCTAssertTrue(FileManager.default.fileExists(atPath: fresh.path))
        // With outputs/ there but not outputs/style/, only outputs/style/ goes.
        try FileManager.default.createDirectory(at: freshRoot, withIntermediateDirectories: false)
        try RunFolder(explicit: nil, generator: "style", now: now, root: freshRoot).discardIfUnused()
        XCTAssertTrue(FileManager.default.fileExists(atPath: freshRoot.path))
        XCTAssertFalse(FileManager.default.fileExists(atPath: freshRoot.appendingPathComponent("style").path))
        // An existing folder is never removed, even when empty.
        let existing = root.appendingPathComponent("existing")
        try FileManager.default.createDirectory(at: existing, withIntermediateDirectories: false)
        try RunFolder(explicit: existing, generator: "gan").discardIfUnused()
        XCTAssertTrue(FileManager.default.fileExists(atPath: existing.path))
        XCTAssertEqual(Set(names).count, 8)
        // An explicit folder is used as given, existing or not.
        let explicit = root.appendingPathComponent("mine")
        XCTAssertEqual(try RunFolder(explicit: explicit, generator: "vae", now: now, root: root).url, explicit)
        XCTAssertFalse(try RunFolder(explicit: explicit, generator: "vae", now: now, root: root).created)
    }

    /// A folder that cannot be made because of its path says why in plain words (not
    /// "NSCocoaErrorDomain error 512").
    func testFolderPathProblemsAreNamed() throws {
        let dir = try makeStudioTempDir(self)
        let file = dir.appendingPathComponent("afile")
        try Data("x".utf8).write(to: file)
        let dangling = dir.appendingPathComponent("dangling")
        try FileManager.default.createSymbolicLink(atPath: dangling.path, withDestinationPath: dir.appendingPathComponent("none").path)
        // Two links pointing at each other: a loop, not "broken".
        let loopA = dir.appendingPathComponent("loopA"), loopB = dir.appendingPathComponent("loopB")
        try FileManager.default.createSymbolicLink(atPath: loopA.path, withDestinationPath: loopB.path)
        try FileManager.default.createSymbolicLink(atPath: loopB.path, withDestinationPath: loopA.path)
        for (target, reason) in [(file.appendingPathComponent("sub"), "\(file.path) is a file, not a folder"),
                                 (loopA.appendingPathComponent("sub"), "\(loopA.path) is a loop of symbolic links"),
                                 (dangling, "\(dangling.path) is a broken symbolic link"),
                                 (dangling.appendingPathComponent("sub/deeper"), "\(dangling.path) is a broken symbolic link")] {
            XCTAssertThrowsError(try RunFolder(explicit: target, generator: "vae")) { error in
                XCTAssertTrue("\(error)".contains(reason), "\(error)")
            }
        }
        XCTAssertThrowsError(try RunFolder(explicit: nil, generator: "vae", root: file)) { error in
            XCTAssertTrue("\(error)".contains("\(file.path) is a file, not a folder"), "\(error)")
        }
    }

    /// Whether some process holds an exclusive flock on `folder` (nil: cannot tell).
    func flockHeld(_ folder: URL) -> Bool? {
        let fd = open(folder.path, O_RDONLY | O_DIRECTORY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        if flock(fd, LOCK_EX | LOCK_NB) == 0 { flock(fd, LOCK_UN); return false }
        return errno == EWOULDBLOCK ? true : nil
    }

    /// A training run holds its folder: a second run (another `--output` of the same folder, or a
    /// second resume of one checkpoint) is refused while the first writes, and may go once it
    /// ended; temporaries left by killed writers are removed, those of live processes kept.
    func testTrainingRunsLockTheirFolderAndClearDeadWritersTemporaries() throws {
        let dir = try makeStudioTempDir(self)
        let out = dir.appendingPathComponent("run")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        // Another process holds the folder (util-linux's flock(1), as a gen run's lock would).
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/flock")
        holder.arguments = ["--exclusive", "--no-fork", out.path, "sleep", "30"]
        try holder.run()
        defer { if holder.isRunning { holder.terminate() } }
        var refused = false
        for _ in 0..<100 where !refused {     // until flock(1) has taken the lock
            do { _ = try trainingFolder(output: out, resume: nil, generator: "text", rewrites: []); usleep(50_000) } catch {
                XCTAssertTrue("\(error)".contains("\(out.path) is in use by another gen run"), "\(error)")
                refused = true
            }
        }
        XCTAssertTrue(refused, "a folder held by another process was accepted")
        // The run holding it has written records but no checkpoint yet: still "in use", not
        // "another run's metrics.csv … remove that folder first".
        try Data("step\n".utf8).write(to: out.appendingPathComponent("metrics.csv"))
        XCTAssertThrowsError(try trainingFolder(output: out, resume: nil, generator: "text", rewrites: [])) { error in
            XCTAssertTrue("\(error)".contains("is in use by another gen run"), "\(error)")
        }
        try FileManager.default.removeItem(at: out.appendingPathComponent("metrics.csv"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: out.path), "the refused run removed the folder in use")
        holder.terminate()
        holder.waitUntilExit()
        // Within this process, a second trainer on the folder shares the first's lock.
        do {
            let first = try trainingFolder(output: out, resume: nil, generator: "text", rewrites: [])
            let second = try trainingFolder(output: out, resume: nil, generator: "text", rewrites: [])
            XCTAssertTrue(first.lock != nil && first.lock === second.lock)
        }
        XCTAssertEqual(flockHeld(out), false, "the lock outlived its run folders")
        // The holder is gone: the folder can be used again.
        try FileManager.default.createDirectory(at: out.appendingPathComponent("samples"), withIntermediateDirectories: true)
        let deadPID = Int32.max - 7
        let dead = ".checkpoint.safetensors.tmp-\(deadPID)-9f3a", live = ".metrics.csv.tmp-\(getpid())-1b"
        let fresh = ".run.json.tmp-\(deadPID)-7", users = ".notes.tmp-\(deadPID)-backup"
        let old = Date(timeIntervalSinceNow: -120)
        for (name, date) in [(dead, old), (live, old), ("samples/.step-000010.png.tmp-\(deadPID)-aa", old), (users, old),
                             ("notes.tmp-12-ab", old), (fresh, Date())] {
            let url = out.appendingPathComponent(name)
            try Data("x".utf8).write(to: url)
            try FileManager.default.setAttributes([.modificationDate: date], ofItemAtPath: url.path)
        }
        _ = try trainingFolder(output: out, resume: nil, generator: "text", rewrites: [])
        // Kept: a live writer's, one written in the last minute, and names that are not gen's.
        let left = try FileManager.default.contentsOfDirectory(atPath: out.path).sorted()
        XCTAssertEqual(left, [live, fresh, users, "notes.tmp-12-ab", "samples"].sorted())
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out.appendingPathComponent("samples").path), [])
        XCTAssertEqual(RunFolder.temporaryFileOwner(".a.png.tmp-42-ff"), 42)
        for name in ["a.png.tmp-42-ff", ".png.tmp-42-ff", ".a.tmp-42-ff", ".a.png.tmp-x-ff", ".a.png.tmp-42-", ".a.png.tmp-42",
                     ".a.png.tmp--1-f", ".a.png.tmp-42-backup", ".a.png.tmp-42-123456789", ".a.doc.tmp-42-ff"] {
            XCTAssertNil(RunFolder.temporaryFileOwner(name), name)
        }
    }
}

/// Ctrl-C while the data loads (before the first step), and output folders holding another run's records.
final class InterruptAndFolderTests: XCTestCase {
    /// The three trainers, each as "start a run into `output` (resuming `resume`) and run it with `stop`".
    /// `checkpointEvery`: also a checkpoint every that many steps (default: only at the end).
    /// `resumeTimeLimit`: the --time-limit (minutes) of resumed runs.
    func trainers(in dir: URL, checkpointEvery: Int? = nil, resumeTimeLimit: Double? = nil) throws -> [(String, (URL?, URL, @escaping () -> Bool) throws -> URL)] {
        let corpus = try writeCorpus(syntheticText(count: 400), in: dir)
        let bars = try writeBarsIDX(in: dir.appendingPathComponent("bars"))
        let images = try writeImageFolder(8, in: dir)
        return [
            ("text", { resume, output, stop in
                var c = tinyConfig(steps: resume == nil ? 2 : 4)
                c.checkpointEvery = checkpointEvery
                if resume != nil { c.timeLimitMinutes = resumeTimeLimit }
                return try TextTrainer(corpus: corpus, config: c, resume: resume,
                                       output: output, arguments: [], progress: SilentProgress()).run(shouldStop: stop).checkpoint }),
            ("vae", { resume, output, stop in
                var c = tinyVAEConfig(data: bars, steps: resume == nil ? 2 : 4)
                c.checkpointEvery = checkpointEvery
                if resume != nil { c.timeLimitMinutes = resumeTimeLimit }
                if resume != nil { c.data = nil }
                return try VAETrainer(config: c, resume: resume, output: output, arguments: [], progress: SilentProgress())
                    .run(shouldStop: stop).checkpoint }),
            ("gan", { resume, output, stop in
                var c = tinyGANConfig(steps: resume == nil ? 2 : 4)
                c.checkpointEvery = checkpointEvery
                if resume != nil { c.timeLimitMinutes = resumeTimeLimit }
                return try GANTrainer(data: images.path, config: c, resume: resume, output: output,
                                      arguments: ["gen", "gan", "train"], progress: SilentProgress()).run(shouldStop: stop).checkpoint }),
        ]
    }

    func contents(_ folder: URL) throws -> [String: Data] {
        var files: [String: Data] = [:]
        let e = FileManager.default.enumerator(at: folder, includingPropertiesForKeys: nil)
        while let u = e?.nextObject() as? URL {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: u.path, isDirectory: &isDir), !isDir.boolValue {
                files[u.path] = try Data(contentsOf: u)
            }
        }
        return files
    }

    /// A stop requested before the first step writes nothing: a fresh run leaves no folder behind
    /// (no step-0 pictures or checkpoint), a resumed run leaves its folder byte for byte as it was.
    func testStopBeforeTheFirstStepWritesNothing() throws {
        let dir = try makeStudioTempDir(self)
        // The stop is seen at the start, or only at the loop's check before the first step (a
        // signal between the two, e.g. while the GAN's real-image grid would be written).
        func stopAfter(_ checks: Int) -> () -> Bool {
            var n = 0
            return { n += 1; return n > checks }
        }
        for (name, start) in try trainers(in: dir) {
            for late in [0, 1] {
                // --output new/a/b: the folders made on the way go too.
                let fresh = dir.appendingPathComponent("\(name)-fresh-\(late)")
                XCTAssertThrowsError(try start(nil, fresh.appendingPathComponent("a/b"), stopAfter(late)), name) { error in
                    guard case StudioError.interruptedBeforeFirstStep(nil) = error else { return XCTFail("\(name): \(error)") }
                    XCTAssertTrue("\(error)".contains("nothing was written"), "\(error)")
                }
                XCTAssertFalse(FileManager.default.fileExists(atPath: fresh.path), "\(name), late \(late): the run folder was left behind")
            }

            let run = dir.appendingPathComponent("\(name)-run")
            let checkpoint = try start(nil, run, { false })
            // A row past the checkpoint's step (from a run killed after writing it): a resume drops
            // it, but only once it takes a step.
            try FileManager.default.removeItem(at: run.appendingPathComponent("run.json"))
            let metrics = run.appendingPathComponent("metrics.csv")
            try Data((try String(contentsOf: metrics, encoding: .utf8) + "99,9\n").utf8).write(to: metrics)
            let before = try contents(run)
            XCTAssertFalse(before.isEmpty)
            for late in [0, 1] {
                XCTAssertThrowsError(try start(checkpoint, run, stopAfter(late)), name) { error in
                    guard case StudioError.interruptedBeforeFirstStep(let resumed?) = error else { return XCTFail("\(name): \(error)") }
                    XCTAssertEqual(resumed, checkpoint.path)
                }
                XCTAssertEqual(try contents(run), before, "\(name), late \(late): the resumed run's folder changed")
            }
            // A write-protected checkpoint is found before training, not at the first checkpoint.
            chmod(checkpoint.path, 0o444)
            XCTAssertThrowsError(try start(checkpoint, run, { false }), name) { error in
                XCTAssertTrue("\(error)".contains("write-protected") && "\(error)".contains(checkpoint.path), "\(name): \(error)")
            }
            chmod(checkpoint.path, 0o644)
            XCTAssertEqual(try contents(run), before, "\(name): a refused resume changed the folder")
            // So are the generator's other files rewritten in place, and a folder where a file goes.
            let rewritten = run.appendingPathComponent(["text": "best.safetensors", "gan": "loss.png"][name] ?? "run.json")
            let existed = FileManager.default.fileExists(atPath: rewritten.path)
            if existed { chmod(rewritten.path, 0o444) } else { try FileManager.default.createDirectory(at: rewritten, withIntermediateDirectories: false) }
            XCTAssertThrowsError(try start(checkpoint, run, { false }), name) { error in
                XCTAssertTrue("\(error)".contains(rewritten.lastPathComponent), "\(name): \(error)")
            }
            if existed { chmod(rewritten.path, 0o644) } else { try FileManager.default.removeItem(at: rewritten) }
            XCTAssertEqual(try contents(run), before, "\(name): a refused resume changed the folder")
            // A stop after one step of the resumed run: a checkpoint, and the stale row is gone.
            _ = try start(checkpoint, run, stopAfter(2))
            XCTAssertFalse(try String(contentsOf: metrics, encoding: .utf8).contains("99,9"), name)
        }
    }

    /// A folder holding another run's metrics.csv (one that stopped before its first checkpoint) is
    /// refused for a new run: its rows would be appended to.
    func testFolderWithAnotherRunsMetricsIsRefused() throws {
        let dir = try makeStudioTempDir(self)
        for (name, start) in try trainers(in: dir) {
            for record in ["metrics.csv", "run.json"] {
                let run = dir.appendingPathComponent("\(name)-old-\(record)")
                try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
                let old = Data("step,epoch\n1,1\n".utf8)
                try old.write(to: run.appendingPathComponent(record))
                XCTAssertThrowsError(try start(nil, run, { false }), name) { error in
                    XCTAssertTrue("\(error)".contains(record) && "\(error)".contains("--output"), "\(name): \(error)")
                }
                XCTAssertEqual(try Data(contentsOf: run.appendingPathComponent(record)), old)
                XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: run.path), [record])
            }
        }
    }
}

extension InterruptAndFolderTests {
    /// A resumed session that takes no step (its time limit is over at once) adds no metrics row,
    /// picture or checkpoint: they would repeat the checkpoint's step.
    func testResumeThatTakesNoStepRepeatsNothing() throws {
        let dir = try makeStudioTempDir(self)
        for (name, start) in try trainers(in: dir, resumeTimeLimit: 1e-12) {
            let run = dir.appendingPathComponent("\(name)-run")
            let checkpoint = try start(nil, run, { false })
            var before = try contents(run)
            before[run.appendingPathComponent("run.json").path] = nil
            _ = try start(checkpoint, run, { false })
            var after = try contents(run)
            let record = try JSONDecoder().decode(RunRecord.self, from: XCTUnwrap(after.removeValue(forKey: run.appendingPathComponent("run.json").path)))
            XCTAssertEqual(after, before, "\(name): a session without steps wrote files")
            XCTAssertEqual(record.outcome?.hasPrefix("time limit"), true, "\(name): \(record)")
        }
    }

    /// A run killed outright after a checkpoint still has its `run.json` (outcome "unfinished"); the
    /// end of the run replaces it with the final record.
    func testRunRecordIsWrittenWithEachCheckpoint() throws {
        let dir = try makeStudioTempDir(self)
        for (name, start) in try trainers(in: dir, checkpointEvery: 1) {
            let run = dir.appendingPathComponent("\(name)-run")
            var seen: [String] = []
            _ = try start(nil, run, {
                // Polled before each step: after step 1's checkpoint (every step here), run.json exists.
                if let d = try? Data(contentsOf: run.appendingPathComponent("run.json")),
                   let r = try? JSONDecoder().decode(RunRecord.self, from: d) { seen.append(r.outcome ?? "nil") }
                return false
            })
            XCTAssertTrue(seen.contains("unfinished: last checkpoint at step 1"), "\(name): \(seen)")
            let final = try JSONDecoder().decode(RunRecord.self, from: Data(contentsOf: run.appendingPathComponent("run.json")))
            XCTAssertEqual(final.outcome, "reached 2 steps", name)
        }
    }
}
