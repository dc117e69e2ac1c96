#include "client/push.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include <fmt/core.h>

#include "chunk/fastcdc.hpp"
#include "codec/codec.hpp"
#include "crypto/encoding.hpp"
#include "nar/nar.hpp"
#include "util/framing.hpp"
#include "util/pipe.hpp"
#include "util/strings.hpp"

namespace larder::client {

namespace {

using Clock = std::chrono::steady_clock;


// Adds what passes through to a shared counter, which the progress thread
// reads; a failed attempt takes its share back.
class CounterSink : public Sink {
public:
    CounterSink(Sink& next, std::atomic<uint64_t>& counter) : m_next(next), m_counter(counter) {}
    Result<void> write(std::string_view data) override {
        m_counter += data.size();
        m_count += data.size();
        return m_next.write(data);
    }
    Result<void> finish() override { return m_next.finish(); }
    void take_back() { m_counter -= std::exchange(m_count, 0); }

private:
    Sink& m_next;
    std::atomic<uint64_t>& m_counter;
    uint64_t m_count = 0;
};

// The server's chunking, from the missing-paths answer.
struct Chunking {
    chunk::Params params;
    size_t single_below = 0;
    int zstd_level = 3;
};

// Cuts the NAR into chunks and writes each as one zstd frame: the bytes the
// server stores and serves.
class FrameSink : public Sink {
public:
    FrameSink(Sink& next, const Chunking& c)
        : m_next(next), m_compressor(c.zstd_level),
          m_chunker(c.params, c.single_below, [this](std::string_view chunk) -> Result<void> {
              TRY(m_compressor.compress(chunk, m_frame));
              return m_next.write(m_frame);
          }) {}
    Result<void> write(std::string_view data) override { return m_chunker.write(data); }
    Result<void> finish() override {
        TRY(m_chunker.finish());
        return m_next.finish();
    }

private:
    Sink& m_next;
    codec::FrameCompressor m_compressor;
    std::string m_frame;
    chunk::Chunker m_chunker;
};

struct Job {
    const PathInfo* info = nullptr;
    std::string narinfo;
    std::string upstream;               // narinfos of references left upstream, length-prefixed
    std::vector<size_t> dependents;     // jobs that reference this one
    size_t waiting_for = 0;             // references not pushed yet
    enum class State { waiting, ready, running, done, failed } state = State::waiting;
};

struct Attempt {
    Result<void> result = ok();
    bool transient = false;
};

class PushRun {
public:
    PushRun(const ServerLogin& login, std::string_view cache, const PushOptions& options,
            std::optional<Chunking> chunking, std::vector<Job> jobs, PushSummary& summary)
        : m_login(login), m_cache(cache), m_options(options), m_chunking(std::move(chunking)),
          m_jobs(std::move(jobs)), m_summary(summary), m_slots(options.jobs) {
        m_open = m_jobs.size();
        for (size_t i = 0; i < m_jobs.size(); ++i) {
            m_total_bytes += m_jobs[i].info->nar_size;
            if (m_jobs[i].waiting_for == 0) {
                m_jobs[i].state = Job::State::ready;
                m_ready.push_back(i);
            }
        }
    }

    void run() {
        m_start = Clock::now();
        std::vector<std::thread> workers;
        unsigned n = std::max(1u, std::min<unsigned>(m_slots.all(), static_cast<unsigned>(m_jobs.size())));
        for (unsigned i = 0; i < n; ++i) workers.emplace_back([this] { work(); });
        std::thread progress;
        if (m_options.progress == ProgressStyle::bar) progress = std::thread([this] { draw_progress(); });
        for (auto& w : workers) w.join();
        {
            std::lock_guard lock(m_mutex);
            m_finished = true;
            m_changed.notify_all();
        }
        if (progress.joinable()) progress.join();
        m_summary.nar_bytes = m_nar_done;
        m_summary.sent_bytes = m_sent;
    }

private:
    void work() {
        Session session(m_login);
        std::unique_lock lock(m_mutex);
        for (;;) {
            std::optional<size_t> index;
            m_changed.wait(lock, [&] { return (index = take()) || m_open == 0; });
            if (!index) return;
            auto& job = m_jobs[*index];
            job.state = Job::State::running;
            m_slots.started(job.info->nar_size);
            lock.unlock();
            auto result = upload_with_retries(session, job);
            lock.lock();
            m_slots.ended(job.info->nar_size);
            settle(*index, result);
            m_changed.notify_all();
        }
    }

    // The first ready job that may start now (the lock held).
    std::optional<size_t> take() {
        for (auto it = m_ready.begin(); it != m_ready.end(); ++it) {
            if (!m_slots.may_start(m_jobs[*it].info->nar_size)) continue;
            size_t index = *it;
            m_ready.erase(it);
            return index;
        }
        return std::nullopt;
    }

    // Records the outcome of a job and releases (or fails) what depended on it.
    void settle(size_t index, const Result<void>& result) {
        auto& job = m_jobs[index];
        --m_open;
        if (result) {
            job.state = Job::State::done;
            ++m_summary.pushed;
            m_nar_done += job.info->nar_size;
            if (m_options.progress == ProgressStyle::lines)
                print_line(fmt::format("pushed {} ({})", job.info->path, human_bytes(job.info->nar_size)));
            for (size_t d : job.dependents)
                if (--m_jobs[d].waiting_for == 0 && m_jobs[d].state == Job::State::waiting) {
                    m_jobs[d].state = Job::State::ready;
                    m_ready.push_back(d);
                }
            return;
        }
        job.state = Job::State::failed;
        ++m_summary.failed;
        auto message = fmt::format("pushing {}: {}", job.info->path, result.error().message);
        print_line("error: " + message);
        m_summary.errors.push_back(std::move(message));
        // Whatever references this path cannot be pushed without it.
        std::vector<size_t> todo = job.dependents;
        while (!todo.empty()) {
            size_t d = todo.back();
            todo.pop_back();
            if (m_jobs[d].state != Job::State::waiting) continue;
            m_jobs[d].state = Job::State::failed;
            --m_open;
            ++m_summary.failed;
            m_summary.errors.push_back(fmt::format("not pushed {}: a path it references was not pushed",
                                                   m_jobs[d].info->path));
            todo.insert(todo.end(), m_jobs[d].dependents.begin(), m_jobs[d].dependents.end());
        }
    }

    Result<void> upload_with_retries(Session& session, const Job& job) {
        auto delay = m_options.backoff;
        for (unsigned attempt = 0;; ++attempt) {
            auto a = upload(session, job);
            if (a.result) return ok();
            if (!a.transient || attempt >= m_options.retries) return a.result;
            if (m_options.progress != ProgressStyle::quiet)
                print_line(fmt::format("retrying {} in {:.1f} s: {}", job.info->path,
                                       std::chrono::duration<double>(delay).count(), a.result.error().message));
            std::this_thread::sleep_for(delay);
            delay *= 2;
        }
    }

    Attempt upload(Session& session, const Job& job) {
        auto target = fmt::format("/{}/push/{}", m_cache,
                                  std::string_view(job.info->path).substr(job.info->path.rfind('/') + 1, 32));
        std::vector<std::string> headers{"Content-Type: application/x-larder-push"};
        if (m_chunking) headers.push_back("X-Larder-Frames: chunks");
        std::optional<Result<ApiResponse>> response;
        ConsumerThread sender([&](Source& body) -> Result<void> {
            response = session.put_stream(target, headers, body);
            if (!*response) return Failure{response->error()};
            if ((*response)->status / 100 == 2) return ok();
            return fail(ErrorCode::unavailable, "the server refused the upload");
        });
        CounterSink sent(sender, m_sent);
        std::unique_ptr<Sink> compressor;
        if (m_chunking) {
            compressor = std::make_unique<FrameSink>(sent, *m_chunking);
        } else if (m_options.transit == PushOptions::Transit::zstd) {
            auto made = codec::make_compressor(codec::Method::zstd, sent, m_options.zstd_level);
            if (!made) return {Failure{made.error()}, false};
            compressor = std::move(*made);
        }
        CounterSink nar(compressor ? *compressor : static_cast<Sink&>(sent), m_nar_moving);
        // The narinfo and the upstream references ride ahead of the NAR in
        // the body, where a path with thousands of references fits.
        auto dumped = sent.write(length_prefixed(job.narinfo) + length_prefixed(job.upstream));
        if (dumped) dumped = nar::dump(job.info->path, nar);
        if (dumped) dumped = nar.finish();
        if (!dumped) sender.abort(dumped.error());
        auto result = sender.finish();
        if (!result) {
            nar.take_back();
            sent.take_back();
        }
        if (response && *response && (*response)->status / 100 != 2) {
            const auto& r = **response;
            auto message = r.body;
            while (!message.empty() && message.back() == '\n') message.pop_back();
            return {fail(r.status >= 500 ? ErrorCode::unavailable : ErrorCode::invalid_input,
                         fmt::format("server answered {}: {}", r.status, printable(message, 500))),
                    is_transient(r)};
        }
        if (result) return {ok(), false};
        if (!dumped && !(response && !*response && response->error().code == ErrorCode::unavailable))
            return {Failure{dumped.error()}, false};
        bool transient = result.error().code == ErrorCode::unavailable || result.error().code == ErrorCode::timeout;
        return {std::move(result), transient};
    }

    void print_line(const std::string& line) {
        std::lock_guard lock(m_print_mutex);
        if (m_options.progress == ProgressStyle::bar) std::fputs("\r\x1b[K", stderr);
        std::fprintf(stderr, "%s\n", line.c_str());
    }

    void draw_progress() {
        std::unique_lock lock(m_mutex);
        for (;;) {
            m_changed.wait_for(lock, std::chrono::milliseconds(250));
            size_t done = m_summary.pushed + m_summary.failed;
            double secs = std::chrono::duration<double>(Clock::now() - m_start).count();
            uint64_t moved = m_nar_moving;
            double rate = secs > 0 ? moved / secs : 0;
            uint64_t shown = std::min<uint64_t>(moved, m_total_bytes);
            auto eta = rate > 0 ? fmt::format("{:.0f} s", (m_total_bytes - shown) / rate) : std::string("?");
            {
                std::lock_guard print(m_print_mutex);
                std::fprintf(stderr, "\r\x1b[K[%zu/%zu paths] %s / %s  %s/s  ETA %s", done, m_jobs.size(),
                             human_bytes(shown).c_str(), human_bytes(m_total_bytes).c_str(),
                             human_bytes(rate).c_str(), eta.c_str());
                if (m_finished) std::fputs("\n", stderr);
                std::fflush(stderr);
            }
            if (m_finished) return;
        }
    }

    const ServerLogin& m_login;
    std::string m_cache;
    const PushOptions& m_options;
    std::optional<Chunking> m_chunking;  // set: send chunk frames
    std::vector<Job> m_jobs;
    PushSummary& m_summary;

    std::mutex m_mutex;  // guards jobs, the ready queue and the summary
    std::condition_variable m_changed;
    std::deque<size_t> m_ready;
    UploadSlots m_slots;
    size_t m_open = 0;
    bool m_finished = false;
    uint64_t m_total_bytes = 0;
    uint64_t m_nar_done = 0;
    std::atomic<uint64_t> m_nar_moving{0};  // NAR bytes read from the store so far
    std::atomic<uint64_t> m_sent{0};
    std::mutex m_print_mutex;
    Clock::time_point m_start;
};

std::string_view hash_part_of(std::string_view path) {
    return path.substr(path.rfind('/') + 1, nix::k_hash_part_length);
}

}  // namespace

std::string human_bytes(double n) {
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (n >= 1024 && u < 4) {
        n /= 1024;
        ++u;
    }
    return u == 0 ? fmt::format("{:.0f} B", n) : fmt::format("{:.1f} {}", n, units[u]);
}

bool signed_by_upstream(const nix::NarInfo& info, const std::vector<std::string>& upstream_keys,
                        std::string_view store_dir) {
    for (const auto& entry : upstream_keys) {
        auto colon = entry.find(':');
        if (colon != std::string::npos) {
            auto key = crypto::parse_public_key(entry);
            if (key && info.verify(*key, store_dir)) return true;
            continue;
        }
        for (const auto& sig : info.sigs)
            if (sig.size() > entry.size() && sig.starts_with(entry) && sig[entry.size()] == ':') return true;
    }
    return false;
}

namespace {

Result<PushSummary> push_once(const ServerLogin& login, std::string_view cache, NixStore& store,
                              const std::vector<std::string>& paths, const PushOptions& options) {
    auto start = Clock::now();
    PushSummary summary;
    TRY_ASSIGN(auto closure, store.closure(paths));
    summary.closure = closure.size();
    if (closure.empty()) return summary;

    // One question, whatever the number of paths: which are missing?
    nlohmann::json query{{"paths", nlohmann::json::array()}};
    for (const auto& p : closure) query["paths"].push_back(hash_part_of(p.path));
    TRY_ASSIGN(auto answer, call_api(login, "POST", fmt::format("/api/v1/caches/{}/missing", cache), query));
    std::unordered_set<std::string> missing, served_upstream;
    std::vector<std::string> upstream_keys;
    std::optional<Chunking> chunking;
    try {
        for (const auto& h : answer.at("missing")) missing.insert(h.get<std::string>());
        // Paths the cache's upstreams serve (a pull-through cache): not sent.
        if (answer.contains("upstream"))
            for (const auto& h : answer["upstream"]) served_upstream.insert(h.get<std::string>());
        if (answer.contains("upstream_keys")) upstream_keys = answer["upstream_keys"].get<std::vector<std::string>>();
        if (answer.contains("chunks") && options.transit == PushOptions::Transit::frames) {
            const auto& c = answer["chunks"];
            chunking = Chunking{{c.at("min_size").get<size_t>(), c.at("avg_size").get<size_t>(),
                                 c.at("max_size").get<size_t>()},
                                c.at("single_below").get<size_t>(),
                                c.at("zstd_level").get<int>()};
            TRY(chunk::check(chunking->params));
        }
    } catch (const nlohmann::json::exception&) {
        return fail(ErrorCode::corrupt, "the server's answer to the missing-paths query is malformed");
    }
    auto compression = chunking || options.transit == PushOptions::Transit::zstd ? "zstd" : "none";

    std::vector<Job> jobs;
    std::unordered_map<std::string, size_t> job_of;      // by full path
    std::unordered_map<std::string, std::string> upstream_paths;  // missing, but signed upstream: narinfos
    for (const auto& p : closure) {
        if (!missing.contains(std::string(hash_part_of(p.path)))) {
            ++(served_upstream.contains(std::string(hash_part_of(p.path))) ? summary.upstream : summary.cached);
            continue;
        }
        TRY_ASSIGN(auto info, store.to_nar_info(p, compression));
        if (signed_by_upstream(info, upstream_keys, store.store_dir())) {
            ++summary.upstream;
            // Sent with each referrer, for the server to check the signature.
            upstream_paths.emplace(p.path, info.render(store.store_dir()));
            continue;
        }
        Job job;
        job.info = &p;
        auto text = info.render(store.store_dir());
        job.narinfo = std::move(text);
        // The closure is ordered references first, so every reference's job exists already.
        for (const auto& r : p.references) {
            if (auto up = upstream_paths.find(r); up != upstream_paths.end()) {
                job.upstream += length_prefixed(up->second);
            } else if (auto it = job_of.find(r); it != job_of.end()) {
                jobs[it->second].dependents.push_back(jobs.size());
                ++job.waiting_for;
            }
        }
        job_of.emplace(p.path, jobs.size());
        jobs.push_back(std::move(job));
    }
    if (!jobs.empty()) {
        PushRun run(login, cache, options, std::move(chunking), std::move(jobs), summary);
        run.run();
    }
    summary.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return summary;
}

// The server refused a path because a reference it had said was there left
// the cache meanwhile (garbage collection, or a delete).
bool lost_a_reference(const PushSummary& s) {
    return std::any_of(s.errors.begin(), s.errors.end(), [](const std::string& e) {
        return e.find("left the cache") != std::string::npos || e.find("(push references first)") != std::string::npos;
    });
}

}  // namespace

Result<PushSummary> push(const ServerLogin& login, std::string_view cache, NixStore& store,
                         const std::vector<std::string>& paths, const PushOptions& options) {
    // Asking again which paths are missing uploads what was collected.
    PushSummary total;
    for (int attempt = 0;; ++attempt) {
        TRY_ASSIGN(auto summary, push_once(login, cache, store, paths, options));
        if (attempt == 0) {
            total = summary;
        } else {
            total.pushed += summary.pushed;
            total.nar_bytes += summary.nar_bytes;
            total.sent_bytes += summary.sent_bytes;
            total.seconds += summary.seconds;
            total.failed = summary.failed;
            total.errors = summary.errors;
        }
        if (!lost_a_reference(summary) || attempt == 2) return total;
        if (options.progress != ProgressStyle::quiet)
            std::fprintf(stderr, "references left the cache during the push (garbage collection?): pushing again\n");
    }
}

}  // namespace larder::client
