// Sharded and single-file safetensors checkpoints (safetensors_checkpoint, see safetensors.h).
// An index names a shard per tensor; the shards are opened once each and cross-checked against the index, so a
// stale index, a missing shard or a tensor stored twice is an error naming both files rather than a silent pick.
#include "loader/safetensors.h"

#include "core/check.h"
#include "loader/json_util.h"

namespace specattn {

namespace {

bool ends_with(const std::string & s, const std::string & suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string parent_dir(const std::string & path) {
    const size_t slash = path.rfind('/');
    return slash == std::string::npos ? std::string(".") : path.substr(0, slash);
}

} // namespace

safetensors_checkpoint::safetensors_checkpoint(const std::string & path) : path_(path) {
    if (ends_with(path, ".json")) {
        open_index();
    } else {
        files_.push_back(std::make_unique<safetensors_file>(path));
        tensors_ = files_.back()->tensors();
    }
    for (size_t i = 0; i < tensors_.size(); ++i) {
        by_name_.emplace(tensors_[i].name, i);
    }
}

void safetensors_checkpoint::open_index() {
    const json index = json_parse_strict(read_text_file(path_), path_);
    SPECATTN_CHECK(index.is_object(), "%s: the index is a JSON %s, not an object", path_.c_str(),
                   json_type_name(index));
    const auto wm = index.find("weight_map");
    SPECATTN_CHECK(wm != index.end() && wm->is_object(), "%s: missing \"weight_map\" object", path_.c_str());
    SPECATTN_CHECK(!wm->empty(), "%s: the weight_map is empty", path_.c_str());

    // Shard names in sorted order ("model-00001-of-00006..." first), each opened once.
    std::map<std::string, size_t> shard_index;
    for (const auto & [name, shard] : wm->items()) {
        SPECATTN_CHECK(shard.is_string(), "%s: weight_map entry for %s is not a file name", path_.c_str(),
                       printable(name).c_str());
        const std::string & s = shard.get_ref<const std::string &>();
        // Shards sit beside the index; a path would let an index reach anywhere on disk.
        SPECATTN_CHECK(!s.empty() && s != "." && s != ".." && s.find('/') == std::string::npos,
                       "%s: weight_map maps %s to '%s', which is not a plain file name", path_.c_str(),
                       printable(name).c_str(), printable(s).c_str());
        shard_index.emplace(s, 0);
    }
    const std::string dir = parent_dir(path_);
    for (auto & [shard, idx] : shard_index) {
        const std::string shard_path = dir + "/" + shard;
        SPECATTN_CHECK(file_exists(shard_path), "%s: shard %s does not exist", path_.c_str(),
                       printable(shard_path).c_str());
        idx = files_.size();
        files_.push_back(std::make_unique<safetensors_file>(shard_path));
    }

    for (const auto & [name, shard] : wm->items()) {
        const safetensors_file & f = *files_[shard_index.at(shard.get<std::string>())];
        SPECATTN_CHECK(f.find(name) != nullptr, "%s: tensor %s is mapped to %s but that shard does not hold it",
                       path_.c_str(), printable(name).c_str(), f.path().c_str());
    }
    for (const auto & f : files_) {
        for (const tensor_ref & t : f->tensors()) {
            const auto it = wm->find(t.name);
            SPECATTN_CHECK(it != wm->end(), "tensor %s in %s is not in the weight_map of %s", printable(t.name).c_str(),
                           f->path().c_str(), path_.c_str());
            const safetensors_file & mapped = *files_[shard_index.at(it->get<std::string>())];
            SPECATTN_CHECK(&mapped == f.get(), "tensor %s appears in both %s and %s", printable(t.name).c_str(),
                           f->path().c_str(), mapped.path().c_str());
            tensors_.push_back(t);
        }
    }
}

const tensor_ref * safetensors_checkpoint::find(const std::string & name) const {
    const auto it = by_name_.find(name);
    return it == by_name_.end() ? nullptr : &tensors_[it->second];
}

} // namespace specattn
