from conan import ConanFile
from conan.tools.cmake import CMake, CMakeDeps, CMakeToolchain, cmake_layout
from conan.tools.files import copy
import os


class DivertConan(ConanFile):
    name = "divert"
    version = "0.1.0"
    license = "Apache-2.0"
    url = "https://github.com/divert-project/divert"
    description = "Embeddable C++20 library for PROXY-v2 diverting connectors"
    topics = ("proxy-protocol", "haproxy", "asio", "networking", "proxy")
    package_type = "library"
    settings = "os", "arch", "compiler", "build_type"
    # asio: which Asio divert is built with and its public types come from:
    # "standalone" (::asio) or "boost" (Boost.Asio, ::boost::asio; -DDIVERT_ASIO=boost).
    options = {"shared": [True, False], "fPIC": [True, False], "with_tls": [True, False],
               "with_idn": [True, False], "asio": ["standalone", "boost"]}
    default_options = {"shared": False, "fPIC": True, "with_tls": True, "with_idn": True,
                       "asio": "standalone"}
    exports_sources = "CMakeLists.txt", "LICENSE", "cmake/*", "include/*", "src/*"

    def config_options(self):
        if self.settings.os == "Windows":
            del self.options.fPIC

    def configure(self):
        if self.options.shared:
            self.options.rm_safe("fPIC")

    def layout(self):
        cmake_layout(self)

    def requirements(self):
        if self.options.asio == "boost":
            self.requires("boost/1.83.0", transitive_headers=True)
        else:
            self.requires("asio/1.28.0", transitive_headers=True)
        self.requires("fmt/10.2.1", transitive_headers=True)
        self.requires("xxhash/0.8.2")
        if self.options.with_tls:
            self.requires("openssl/[>=3 <4]", transitive_headers=True)
        if self.options.with_idn:
            self.requires("libidn2/[>=2.3.0 <3]")  # private: used inside the library only

    def generate(self):
        tc = CMakeToolchain(self)
        tc.variables["DIVERT_BUILD_TESTS"] = False
        tc.variables["DIVERT_BUILD_EXAMPLES"] = False
        tc.variables["DIVERT_WITH_TLS"] = bool(self.options.with_tls)
        tc.variables["DIVERT_WITH_IDN"] = bool(self.options.with_idn)
        tc.variables["DIVERT_ASIO"] = str(self.options.asio)
        tc.generate()
        CMakeDeps(self).generate()

    def build(self):
        cmake = CMake(self)
        cmake.configure()
        cmake.build()

    def package(self):
        copy(self, "LICENSE", self.source_folder, os.path.join(self.package_folder, "licenses"))
        CMake(self).install()

    def package_info(self):
        self.cpp_info.set_property("cmake_file_name", "divert")
        self.cpp_info.set_property("cmake_target_name", "divert::divert")
        self.cpp_info.set_property("pkg_config_name", "divert")
        self.cpp_info.libs = ["divert"]
        # No Asio policy defines (the host keeps its own). Standalone Asio before
        # 1.24 detects C++20 coroutines on GCC only: Clang gets them spelled out.
        self.cpp_info.defines = []
        if self.options.asio == "standalone" and str(self.settings.compiler) in ("clang", "apple-clang"):
            self.cpp_info.defines += ["ASIO_HAS_CO_AWAIT=1", "ASIO_HAS_STD_COROUTINE=1"]
        if not self.options.shared:
            self.cpp_info.defines.append("DIVERT_STATIC_DEFINE")
        if self.options.with_tls:
            self.cpp_info.defines.append("DIVERT_WITH_TLS=1")
        if self.settings.os in ("Linux", "FreeBSD"):
            self.cpp_info.system_libs = ["pthread"]
